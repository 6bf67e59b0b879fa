/**
 * An IO handler for Node that saves and loads the standard tfjs
 * layers-model format (model.json + a weights .bin file), the same files
 * tfjs-node's `file://` handler writes and reads, without needing
 * tfjs-node. With tfjs-node installed, `file://` works as well.
 */
import * as tf from '@tensorflow/tfjs';

// Node's modules are named in variables: bundlers (esbuild, vite, webpack)
// then leave the imports alone, so a browser bundle of this package builds,
// and they are only loaded when a file handler is used.
const FS_MODULE = 'node:fs/promises';
const PATH_MODULE = 'node:path';

/** Node's fs/promises and path, loaded on first use. */
async function node(): Promise<{fs: typeof import('node:fs/promises'), path: typeof import('node:path')}> {
  const [fs, path] = await Promise.all([
    import(/* @vite-ignore */ /* webpackIgnore: true */ FS_MODULE),
    import(/* @vite-ignore */ /* webpackIgnore: true */ PATH_MODULE),
  ]);
  return {fs: fs as typeof import('node:fs/promises'), path: path as typeof import('node:path')};
}

const WEIGHTS_FILE = 'weights.bin';
const MODEL_FILE = 'model.json';

/** Bytes per element of a weight as stored (after quantization). */
export function storedBytesPerElement(spec: tf.io.WeightsManifestEntry): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  switch (dtype) {
    case 'float32': case 'int32': case 'uint32' as string: return 4;
    case 'uint16': case 'float16': return 2;
    case 'uint8': case 'bool': return 1;
    case 'complex64': return 8;
    default: return NaN;  // strings are variable-length
  }
}

/** Total byte length of a WeightData value (an ArrayBuffer or a list of them). */
export function weightDataBytes(data: tf.io.WeightData): number {
  return Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
}

/** One ArrayBuffer of a WeightData value. */
function joinWeightData(data: tf.io.WeightData): ArrayBuffer {
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

function describePath(p: string): string {
  return JSON.stringify(p);
}

class FileSystemHandler implements tf.io.IOHandler {
  constructor(private readonly target: string) {}

  /** The directory and the model.json path this handler uses. */
  private async paths(): Promise<{dir: string, modelPath: string}> {
    const {path} = await node();
    if (this.target.endsWith('.json')) return {dir: path.dirname(this.target), modelPath: this.target};
    return {dir: this.target, modelPath: path.join(this.target, MODEL_FILE)};
  }

  async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error('io.fileSystem: saving a binary model topology is not supported (layers models save JSON).');
    }
    const {fs, path} = await node();
    const {dir, modelPath} = await this.paths();
    await fs.mkdir(dir, {recursive: true});
    const weightsManifest: tf.io.WeightsManifestConfig = [{paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? []}];
    const modelJSON: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology as object,
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
      weightsManifest,
    };
    if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
    if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
    if (artifacts.userDefinedMetadata != null) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
    if (artifacts.modelInitializer != null) modelJSON.modelInitializer = artifacts.modelInitializer;
    if (artifacts.initializerSignature != null) modelJSON.initializerSignature = artifacts.initializerSignature;
    const weights = artifacts.weightData ? new Uint8Array(joinWeightData(artifacts.weightData)) : new Uint8Array(0);
    await fs.writeFile(path.join(dir, WEIGHTS_FILE), weights);
    await fs.writeFile(modelPath, JSON.stringify(modelJSON), 'utf8');
    return {modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts)};
  }

  async load(): Promise<tf.io.ModelArtifacts> {
    const {fs, path} = await node();
    const {dir, modelPath} = await this.paths();
    let text: string;
    try {
      text = await fs.readFile(modelPath, 'utf8');
    } catch (e) {
      throw new Error(`io.fileSystem: cannot read model.json at ${describePath(modelPath)}: ${(e as Error).message}`);
    }
    let modelJSON: tf.io.ModelJSON;
    try {
      modelJSON = JSON.parse(text) as tf.io.ModelJSON;
    } catch (e) {
      throw new Error(`io.fileSystem: ${describePath(modelPath)} is not valid JSON (truncated?): ${(e as Error).message}`);
    }
    if (modelJSON == null || typeof modelJSON !== 'object' || modelJSON.modelTopology == null) {
      throw new Error(`io.fileSystem: ${describePath(modelPath)} has no 'modelTopology': it is not a tfjs layers model.`);
    }
    return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
      const buffers: ArrayBuffer[] = [];
      const specs: tf.io.WeightsManifestEntry[] = [];
      for (const group of manifest) {
        for (const p of group.paths) {
          const file = path.join(dir, p);
          let buf: Buffer;
          try {
            buf = await fs.readFile(file);
          } catch (e) {
            throw new Error(`io.fileSystem: weights file ${describePath(file)} listed in ${describePath(modelPath)} ` +
                            `cannot be read: ${(e as Error).message}`);
          }
          buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
        }
        specs.push(...group.weights);
      }
      return [specs, buffers.length === 1 ? buffers[0] : tf.io.CompositeArrayBuffer.join(buffers)];
    });
  }
}

/**
 * An IO handler for a model saved as files in Node: `model.save(io.fileSystem('out/dir'))`
 * writes out/dir/model.json and out/dir/weights.bin; `io.loadLayersModel(io.fileSystem('out/dir'))`
 * (or `tf.loadLayersModel(io.fileSystem('out/dir/model.json'))`) loads them back. The path is a
 * directory, or the path of the model.json file. Uses Node's fs; not for browsers.
 */
export function fileSystem(path: string): tf.io.IOHandler {
  if (typeof path !== 'string' || path.length === 0) {
    throw new Error(`io.fileSystem: argument 'path' must be a non-empty string (a directory or a model.json path); received ${JSON.stringify(path)}.`);
  }
  return new FileSystemHandler(path.startsWith('file://') ? path.slice('file://'.length) : path);
}
