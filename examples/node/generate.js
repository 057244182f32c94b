// diffusiond from Node.js, with nothing but protos/ and two npm packages.
// Lists the models, then runs Generate, printing queue position and progress, and saves the image(s).
//
//   npm ci && node generate.js [--address HOST:PORT|unix:PATH] [--out fox.png] [--steps 20] [--seed 7] "a red fox"
//
// The address defaults to $DIFFUSIOND_ADDRESS or localhost:50051; $DIFFUSIOND_TOKEN is sent as
// `authorization: Bearer <token>` when set. Exits 0 on success, 1 with the gRPC status on failure.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');

function loadApi() {
  const definition = protoLoader.loadSync(
    ['diffusiond/v1/model_service.proto', 'diffusiond/v1/generation_service.proto'],
    { includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition).diffusiond.v1;
}

function metadata() {
  const md = new grpc.Metadata();
  if (process.env.DIFFUSIOND_TOKEN) md.set('authorization', `Bearer ${process.env.DIFFUSIOND_TOKEN}`);
  return md;
}

function listModels(client) {
  return new Promise((resolve, reject) => {
    client.ListModels({}, metadata(), (error, response) => (error ? reject(error) : resolve(response.models)));
  });
}

function generate(client, request, out) {
  return new Promise((resolve, reject) => {
    const saved = [];
    const call = client.Generate(request, metadata());
    call.on('data', (event) => {
      switch (event.event) {
        case 'queued':
          console.log(`queued: position ${event.queued.position} of ${event.queued.queue_length}`);
          break;
        case 'started':
          console.log(`started: model ${event.started.model}, seeds ${event.started.seeds.join(',')}`);
          break;
        case 'progress':
          console.log(`progress: step ${event.progress.step}/${event.progress.total_steps}`);
          break;
        case 'image': {
          const { index, seed, data } = event.image;
          const file = index === 0 ? out : out.replace(/(\.[a-z]+)?$/, `-${index}$1`);
          fs.writeFileSync(file, data);
          saved.push(file);
          console.log(`image ${index}: seed ${seed}, ${data.length} bytes -> ${file}`);
          break;
        }
        case 'completed':
          console.log(`completed: ${event.completed.state} in ${event.completed.timings.total_seconds.toFixed(2)} s`);
          break;
        default:
          break;
      }
    });
    call.on('error', reject);
    call.on('end', () => resolve(saved));
  });
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      address: { type: 'string', default: process.env.DIFFUSIOND_ADDRESS || 'localhost:50051' },
      out: { type: 'string', default: 'image.png' },
      steps: { type: 'string', default: '20' },
      seed: { type: 'string' },
    },
    allowPositionals: true,
  });
  const api = loadApi();
  const credentials = grpc.credentials.createInsecure();
  const options = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 };
  const models = new api.ModelService(values.address, credentials, options);
  const generation = new api.GenerationService(values.address, credentials, options);
  for (const model of await listModels(models)) {
    console.log(`model: ${model.name} (${model.base}, ${model.loaded ? 'loaded' : 'not loaded'})`);
  }
  const request = { prompt: positionals.join(' ') || 'a red fox in the snow', steps: Number(values.steps) };
  if (values.seed !== undefined) request.seed = values.seed; // uint64 as a string: no precision lost
  const saved = await generate(generation, request, values.out);
  if (saved.length === 0) throw new Error('the job ended without an image');
}

main().catch((error) => {
  console.error(`error: ${error.code !== undefined ? grpc.status[error.code] : ''} ${error.details || error.message}`);
  process.exit(1);
});
