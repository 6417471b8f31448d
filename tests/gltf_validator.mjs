// Validate one glTF/GLB file with the Khronos glTF-Validator and print its JSON report on stdout.
// Usage: node tests/gltf_validator.mjs FILE   (external .bin/.png are read beside FILE)
// Exit status: 0 when a report was produced (whatever its issues), 1 when validation could not run.
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: node gltf_validator.mjs FILE.glb|FILE.gltf");
  process.exit(1);
}

// URIs in the asset are percent-encoded and relative to the asset's folder.
const readSibling = async (uri) =>
  new Uint8Array(await readFile(path.resolve(path.dirname(file), decodeURIComponent(uri))));

try {
  const report = await validator.validateBytes(new Uint8Array(await readFile(file)), {
    uri: path.basename(file),
    maxIssues: 0, // unlimited: counts and messages must agree
    writeTimestamp: false,
    externalResourceFunction: (uri) => readSibling(uri).catch((err) => Promise.reject(err.toString())),
  });
  process.stdout.write(JSON.stringify(report, null, 2) + "\n");
} catch (err) {
  console.error(`gltf-validator failed on ${file}: ${err}`);
  process.exit(1);
}
