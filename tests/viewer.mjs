// Drive Chromium (puppeteer-core) through pages of tests/viewer/ and report what happened, as JSON:
//   node tests/viewer.mjs '{"chromium": PATH, "jobs": [{"url": URL, "screenshot": PNG}, ...]}'
// Per job: page errors, console errors, failed requests (network failures and HTTP >= 400), the
// page's window.__result, and the screenshot written to PNG. WebGL runs on SwiftShader.
import puppeteer from 'puppeteer-core';

const { chromium, jobs, timeout = 60000 } = JSON.parse( process.argv[ 2 ] );
const browser = await puppeteer.launch( {
	executablePath: chromium,
	headless: true,
	args: [ '--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist',
		'--disable-dev-shm-usage' ],
} );
const reports = [];
try {

	for ( const job of jobs ) {

		const page = await browser.newPage();
		await page.setViewport( { width: 1024, height: 640 } );
		const report = { url: job.url, pageErrors: [], consoleErrors: [], failedRequests: [], requests: 0 };
		page.on( 'pageerror', ( e ) => report.pageErrors.push( String( e ) ) );
		page.on( 'console', ( m ) => m.type() === 'error' && report.consoleErrors.push( m.text() ) );
		page.on( 'requestfailed', ( r ) => report.failedRequests.push( `${ r.url() }: ${ r.failure()?.errorText }` ) );
		page.on( 'response', ( r ) => {

			report.requests += 1;
			if ( r.status() >= 400 ) report.failedRequests.push( `${ r.url() }: HTTP ${ r.status() }` );

		} );
		const start = Date.now();
		await page.goto( job.url, { waitUntil: 'load' } );
		try {

			await page.waitForFunction( () => window.__result !== undefined, { timeout } );
			report.result = await page.evaluate( () => window.__result );

		} catch ( e ) {

			report.pageErrors.push( `no result: ${ e.message }` );

		}
		report.seconds = ( Date.now() - start ) / 1000;
		await page.screenshot( { path: job.screenshot } );
		reports.push( report );
		await page.close();

	}

} finally {

	await browser.close();

}
console.log( JSON.stringify( reports ) );
