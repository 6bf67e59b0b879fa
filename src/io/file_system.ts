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

/**
 * The weights file that goes with a model.json path: `weights.bin` beside a
 * `model.json` (tfjs-node's layout, also what a directory target gives), else
 * `<stem>.weights.bin` beside `<stem>.json`, so two model.json paths never
 * share a weights file.
 */
export function weightsFileFor(modelJsonName: string): string {
  if (modelJsonName === MODEL_FILE) return WEIGHTS_FILE;
  return `${modelJsonName.replace(/\.json$/, '')}.weights.bin`;
}

type Fs = typeof import('node:fs/promises');

/** Writes a file and flushes it to disk before returning. */
async function writeDurable(fs: Fs, file: string, data: Uint8Array|string): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function removeQuietly(fs: Fs, file: string): Promise<void> {
  await fs.rm(file, {force: true}).catch(() => undefined);
}

/** Whether a process id is alive (a temporary file of a live process is left alone). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<name>.<pid>-<n>.tmp` files that a killed save of these names left in dir. */
async function removeStaleTemporaries(fs: Fs, path: typeof import('node:path'), dir: string, names: string[]): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    for (const name of names) {
      const m = entry.startsWith(`${name}.`) ? /^\.(\d+)-[0-9a-z]+\.tmp$/.exec(entry.slice(name.length)) : null;
      if (m != null && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
        await removeQuietly(fs, path.join(dir, entry));
      }
    }
  }
}

/** Loads whose model.json was replaced during the read (a concurrent save) before the load gives up. */
const LOAD_ATTEMPTS = 5;

type BigStats = import('node:fs').BigIntStats;

/** One file as written: a save renames a new file into place, which changes its inode and change time. */
function identityOf(s: BigStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** The identity of the file at `file` now, or '' when there is none. */
async function fileIdentity(fs: Fs, file: string): Promise<string> {
  return fs.stat(file, {bigint: true}).then(identityOf, () => '');
}

let saveCounter = 0;

/** The last save to each model.json path (resolved) in this process: the next save to it waits for it. */
const savesInProgress = new Map<string, Promise<unknown>>();

class FileSystemHandler implements tf.io.IOHandler {
  constructor(private readonly target: string) {}

  /** The directory and the model.json path this handler uses. */
  private async paths(): Promise<{dir: string, modelPath: string}> {
    const {path} = await node();
    if (this.target.endsWith('.json')) return {dir: path.dirname(this.target), modelPath: this.target};
    return {dir: this.target, modelPath: path.join(this.target, MODEL_FILE)};
  }

  /**
   * Saves atomically: both files are written (and flushed) under temporary
   * names, then renamed into place, weights first. When a weights file of
   * the same name exists already (a re-save to the same path), model.json is
   * removed before the weights are replaced, so at no moment does a
   * model.json name weights other than its own: a save killed at any point
   * leaves the previous pair, the new pair, or (during a re-save) no
   * model.json at all, which fails to load with an error. Saves to the same
   * model.json path in this process run one after the other (in the order
   * they were called): two at once would interleave their renames and
   * leave, for a moment, one's model.json with the other's weights.
   */
  async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error('io.fileSystem: saving a binary model topology is not supported (layers models save JSON).');
    }
    const {path} = await node();
    const {modelPath} = await this.paths();
    const key = path.resolve(modelPath);
    const run = (savesInProgress.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => this.saveNow(artifacts));
    savesInProgress.set(key, run);
    try {
      return await run;
    } finally {
      if (savesInProgress.get(key) === run) savesInProgress.delete(key);
    }
  }

  /** One save (see save()). */
  private async saveNow(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
    const {fs, path} = await node();
    const {dir, modelPath} = await this.paths();
    await fs.mkdir(dir, {recursive: true});
    const weightsName = weightsFileFor(path.basename(modelPath));
    const weightsPath = path.join(dir, weightsName);
    const weightsManifest: tf.io.WeightsManifestConfig = [{paths: [weightsName], weights: artifacts.weightSpecs ?? []}];
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
    const tag = `${process.pid}-${(saveCounter++).toString(36)}`;
    const weightsTmp = `${weightsPath}.${tag}.tmp`;
    const modelTmp = `${modelPath}.${tag}.tmp`;
    try {
      await writeDurable(fs, weightsTmp, weights);
      await writeDurable(fs, modelTmp, JSON.stringify(modelJSON));
      const replacing = await fs.stat(weightsPath).then(() => true, () => false);
      if (replacing) await fs.rm(modelPath, {force: true});
      await fs.rename(weightsTmp, weightsPath);
      await fs.rename(modelTmp, modelPath);
    } catch (e) {
      await removeQuietly(fs, weightsTmp);
      await removeQuietly(fs, modelTmp);
      throw new Error(`io.fileSystem: cannot save to ${describePath(modelPath)}: ${(e as Error).message}`);
    }
    await removeStaleTemporaries(fs, path, dir, [path.basename(modelPath), weightsName]);
    return {modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts)};
  }

  /**
   * Loads model.json and the weights it names. A save to the same path may
   * land between the two reads (a training process checkpointing while a
   * server loads): the save replaces model.json (a new file renamed into
   * place) no later than it replaces the weights, so the load compares the
   * model.json it read with the one there after the weights were read and,
   * if it was replaced, loads again (the weights might be the new save's);
   * after LOAD_ATTEMPTS replaced reads in a row it gives up with an error.
   */
  async load(): Promise<tf.io.ModelArtifacts> {
    const {fs, path} = await node();
    const {dir, modelPath} = await this.paths();
    for (let attempt = 1; ; attempt++) {
      const {artifacts, read} = await this.loadOnce(fs, path, dir, modelPath);
      if (await fileIdentity(fs, modelPath) === read) return artifacts;
      if (attempt >= LOAD_ATTEMPTS) {
        throw new Error(`io.fileSystem: ${describePath(modelPath)} was replaced while its weights were read (a save to the ` +
                        `same path), ${LOAD_ATTEMPTS} times in a row; load again when the saves stop.`);
      }
    }
  }

  /** One read of model.json and its weights; `read` identifies the model.json file that was read. */
  private async loadOnce(fs: Fs, path: typeof import('node:path'), dir: string, modelPath: string):
      Promise<{artifacts: tf.io.ModelArtifacts, read: string}> {
    let text: string;
    let read: string;
    try {
      const handle = await fs.open(modelPath, 'r');
      try {
        read = identityOf(await handle.stat({bigint: true}));
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
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
    const artifacts = await tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
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
    return {artifacts, read};
  }
}

/**
 * An IO handler for a model saved as files in Node: `model.save(io.fileSystem('out/dir'))`
 * writes out/dir/model.json and out/dir/weights.bin (tfjs-node's layout);
 * `model.save(io.fileSystem('ckpt/epoch1.json'))` writes ckpt/epoch1.json and
 * ckpt/epoch1.weights.bin, so two model.json paths never share weights. Saves are
 * atomic (temporary names, then rename). `io.loadLayersModel(io.fileSystem('out/dir'))`
 * (or `tf.loadLayersModel(io.fileSystem('out/dir/model.json'))`) loads them back, reading
 * the weights files the manifest names. Uses Node's fs; not for browsers.
 */
export function fileSystem(path: string): tf.io.IOHandler {
  if (typeof path !== 'string' || path.length === 0) {
    throw new Error(`io.fileSystem: argument 'path' must be a non-empty string (a directory or a model.json path); received ${JSON.stringify(path)}.`);
  }
  return new FileSystemHandler(path.startsWith('file://') ? path.slice('file://'.length) : path);
}
