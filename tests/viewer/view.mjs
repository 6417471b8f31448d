// What the tests look at in a real browser: ?glb=URL (three.js GLTFLoader) or ?tileset=URL
// (3d-tiles-renderer), framed whole from the south-east, 40 degrees above the horizon; or, with
// &from=x,y,z&at=x,y,z (the tileset's frame: x east, y north, z up), from there. When everything
// asked for is drawn, window.__result says what was loaded and drawn.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { TilesRenderer } from '3d-tiles-renderer';

const params = new URLSearchParams( location.search );
const renderer = new THREE.WebGLRenderer( { preserveDrawingBuffer: true } );
renderer.setSize( innerWidth, innerHeight );
document.body.appendChild( renderer.domElement );
const scene = new THREE.Scene();
scene.background = new THREE.Color( 0x9db4cc );
scene.add( new THREE.HemisphereLight( 0xffffff, 0x556655, 1.5 ) );
const sun = new THREE.DirectionalLight( 0xffffff, 2 );
sun.position.set( - 1, 3, 2 );
scene.add( sun );
const camera = new THREE.PerspectiveCamera( 60, innerWidth / innerHeight, 0.1, 1e7 );

// z-up (x east, y north) -> three.js y-up (x east, -z north)
const yUp = ( text ) => {

	const [ x, y, z ] = text.split( ',' ).map( Number );
	return new THREE.Vector3( x, z, - y );

};

function look( from, at ) {

	const distance = from.distanceTo( at );
	camera.position.copy( from );
	camera.near = distance / 1000;
	camera.far = distance * 10;
	camera.updateProjectionMatrix();
	camera.lookAt( at );
	camera.updateMatrixWorld();

}

function frame( sphere ) {

	if ( params.has( 'from' ) ) {

		look( yUp( params.get( 'from' ) ), yUp( params.get( 'at' ) ) );
		return;

	}
	const distance = sphere.radius / Math.sin( THREE.MathUtils.degToRad( camera.fov / 2 ) );
	const elevation = THREE.MathUtils.degToRad( 40 );
	const direction = new THREE.Vector3( Math.cos( elevation ) * 0.5, Math.sin( elevation ), Math.cos( elevation ) * 0.87 );
	look( sphere.center.clone().addScaledVector( direction.normalize(), distance ), sphere.center );

}

function finish( result ) {

	renderer.render( scene, camera );
	result.triangles = renderer.info.render.triangles;
	window.__result = result;

}

async function showGlb( url ) {

	const gltf = await new GLTFLoader().loadAsync( url );
	scene.add( gltf.scene );
	frame( new THREE.Box3().setFromObject( gltf.scene ).getBoundingSphere( new THREE.Sphere() ) );
	let meshes = 0;
	gltf.scene.traverse( ( o ) => meshes += o.isMesh ? 1 : 0 );
	finish( { meshes } );

}

function showTileset( url ) {

	const tiles = new TilesRenderer( url );
	tiles.group.rotation.x = - Math.PI / 2; // the tileset's z-up frame in three.js' y-up one
	scene.add( tiles.group );
	tiles.setCamera( camera );
	tiles.setResolutionFromRenderer( camera, renderer );
	const loaded = [];
	tiles.addEventListener( 'load-model', ( e ) => loaded.push( e.tile.content.uri ) );
	tiles.addEventListener( 'load-error', ( e ) => console.error( `could not load ${ e.url }: ${ e.error }` ) );
	let framed = false, quiet = 0;
	const tick = () => {

		const sphere = new THREE.Sphere();
		if ( ! framed && tiles.getBoundingSphere( sphere ) ) {

			tiles.group.updateMatrixWorld( true );
			frame( sphere.applyMatrix4( tiles.group.matrixWorld ) );
			framed = true;

		}
		tiles.update();
		renderer.render( scene, camera );
		const { queued, downloading, parsing } = tiles.stats;
		// Done when nothing has been asked for or parsed for a few frames in a row.
		quiet = framed && loaded.length && queued + downloading + parsing === 0 ? quiet + 1 : 0;
		if ( quiet < 5 ) {

			requestAnimationFrame( tick );
			return;

		}
		const drawn = [ ...tiles.visibleTiles ].map( ( t ) => t.content.uri );
		finish( { loaded, drawn } );

	};
	tick();

}

if ( params.has( 'glb' ) ) showGlb( params.get( 'glb' ) );
else showTileset( params.get( 'tileset' ) );
