// Run ember's exported Digits CNN with onnxruntime-node: no Python involved.
//
//   node predict.js out/digits_cnn.onnx out/inputs.json [--json]
//
// inputs.json names a raw little-endian float32 file and its shape (written by
// export_digits.py). Prints the predicted digit of each image; with --json, one
// JSON object {"predictions": [...], "logits": [[...], ...]} instead.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const args = process.argv.slice(2);
  const asJson = args.includes('--json');
  const [modelPath, inputsPath] = args.filter((a) => a !== '--json');
  if (!modelPath || !inputsPath) {
    console.error('usage: node predict.js MODEL.onnx INPUTS.json [--json]');
    process.exit(2);
  }
  const meta = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const raw = fs.readFileSync(path.join(path.dirname(inputsPath), meta.file));
  const count = meta.shape.reduce((a, b) => a * b, 1);
  if (raw.length !== count * 4) {
    throw new Error(`${meta.file} holds ${raw.length} bytes, expected ${count * 4} for shape ${meta.shape}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = raw.readFloatLE(i * 4);

  const session = await ort.InferenceSession.create(modelPath);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, meta.shape) };
  const output = (await session.run(feeds))[session.outputNames[0]];
  const [n, classes] = output.dims;
  const logits = [];
  const predictions = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(output.data.slice(i * classes, (i + 1) * classes));
    logits.push(row);
    predictions.push(row.indexOf(Math.max(...row)));
  }
  if (asJson) {
    console.log(JSON.stringify({ predictions, logits }));
  } else {
    console.log('onnxruntime-node predictions:', predictions.join(' '));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
