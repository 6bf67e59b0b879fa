import * as tf from '@tensorflow/tfjs';

import {fusedMovingUpdate} from '../kernels/moving_update';
import {batchNormInference, BatchNormPlan, batchNormPlan, batchNormWithPlan} from '../ops/batch_norm';
import {varianceOfSet} from '../ops/core';
import {fullSize, prepareMask} from '../ops/mask';
import {argError, checkBoolean, checkChannelsRank, checkFloatTensor, checkIntegerAxis, resolveAxis, show} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization} from './base';
import {ConfigDict} from './common';
import {getInitializer, Initializer, InitializerIdentifier, serialize} from './identifiers';

/** Batch renormalization's clipping of its corrections (Keras's `renorm_clipping`); a missing or null key: no clipping. */
export interface RenormClipping {
  /** Upper bound of r (stddev / moving stddev). */
  rmax?: number|null;
  /** Lower bound of r. */
  rmin?: number|null;
  /** Bound of |d| ((mean - moving mean) / moving stddev); >= 0. */
  dmax?: number|null;
}

/** Arguments of {@link BatchNormalization} (Keras 3's, camelCase). */
export interface BatchNormalizationArgs extends AffineArgs {
  /** The channel (features) axis. Default -1; 1 for channels-first. */
  axis?: number;
  /** Momentum of the moving averages: `moving = moving * momentum + batch * (1 - momentum)`. Default 0.99. */
  momentum?: number;
  /** Initializer of the moving mean. Default 'zeros'. */
  movingMeanInitializer?: InitializerIdentifier;
  /** Initializer of the moving variance. Default 'ones'. */
  movingVarianceInitializer?: InitializerIdentifier;
  /**
   * Keras's cross-replica batch statistics (TensorFlow backend only). Accepted
   * and kept in the config; meaningless in one process, where the batch
   * statistics are already the global ones. Default false.
   */
  synchronized?: boolean;
  /** Batch renormalization (Ioffe, 2017), as Keras 3. Default false. */
  renorm?: boolean;
  /** Clipping of the renorm corrections: `{rmax, rmin, dmax}`. Default none. */
  renormClipping?: RenormClipping|null;
  /** Momentum of the renorm moving statistics. Default 0.99. */
  renormMomentum?: number;
}

const CLIPPING_KEYS = ['rmax', 'rmin', 'dmax'];

/** The moving statistics as a training step wrote them (float32 values), with the data each variable then held. */
interface WrittenStats {
  meanData: object;
  varianceData: object;
  mean: Float32Array;
  variance: Float32Array;
}
/** Backends whose tensors live in CPU memory, tfjs-node's 'tensorflow' included (reading C values is cheap and does not stall a GPU). */
const CPU_BACKENDS = new Set(['cpu', 'wasm', 'tensorflow']);

function checkMomentum(who: string, arg: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw argError(who, arg, v, 'a number in [0, 1]');
  return v;
}

function checkClipping(who: string, v: unknown): RenormClipping|null {
  if (v == null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw argError(who, 'renormClipping', v, 'an object with the keys rmax, rmin, dmax (each a number or null)');
  }
  const c = v as Record<string, unknown>;
  const unknown = Object.keys(c).filter((k) => !CLIPPING_KEYS.includes(k));
  if (unknown.length > 0) {
    throw argError(who, 'renormClipping', v, `an object with only the keys rmax, rmin, dmax (unknown: ${unknown.join(', ')})`);
  }
  const out: RenormClipping = {};
  for (const k of CLIPPING_KEYS as Array<keyof RenormClipping>) {
    const x = c[k];
    if (x === undefined) continue;
    if (x !== null && (typeof x !== 'number' || Number.isNaN(x))) {
      throw argError(who, 'renormClipping', v, `an object whose '${k}' is a number or null`);
    }
    out[k] = x as number|null;
  }
  if (out.rmax != null && out.rmin != null && out.rmax < out.rmin) {
    throw argError(who, 'renormClipping', v, 'an object with rmax >= rmin');
  }
  if (out.dmax != null && out.dmax < 0) throw argError(who, 'renormClipping', v, 'an object with dmax >= 0');
  return out;
}

/**
 * Batch normalization (Ioffe & Szegedy, 2015) with every argument of
 * Keras 3's `keras.layers.BatchNormalization`; it replaces tfjs's built-in
 * in the serialization registry (className 'BatchNormalization'), so
 * models saved with `tf.layers.batchNormalization` load into it.
 *
 * - Training (`training: true` and the layer trainable): batch statistics,
 *   the mean and population variance over every axis but `axis` (valid
 *   positions only, with a mask of rank inputs - 1), through this
 *   package's fused kernels; then
 *   `moving = moving * momentum + batch * (1 - momentum)`.
 * - Inference (otherwise, `trainable: false` included, as Keras): the
 *   moving statistics.
 * - `renorm`: batch renormalization exactly as Keras 3: r = stddev /
 *   max(renorm_stddev, sqrt(eps)), d = (mean - renorm_mean) / that, clipped
 *   by `renormClipping`, constants to the gradient;
 *   `y = xhat * (r * gamma) + (d * gamma + beta)`; the non-trainable weights
 *   `moving_stddev`, `renorm_mean`, `renorm_stddev` follow the four of
 *   Keras/tfjs (gamma, beta, moving_mean, moving_variance), and
 *   moving_variance = relu(moving_stddev^2 - eps).
 *
 * Config keys are tfjs's (those of `tf.layers.batchNormalization`);
 * `synchronized`, `renorm`, `renormClipping` and `renormMomentum` are
 * written only when used.
 */
export class BatchNormalization extends AffineNormalization {
  /** The serialization class name, `BatchNormalization` (the built-in's, which this class replaces). */
  static className = 'BatchNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = [
    'axis', 'momentum', ...AFFINE_KEYS, 'movingMeanInitializer', 'movingVarianceInitializer', 'synchronized', 'renorm',
    'renormClipping', 'renormMomentum',
  ];
  /** The channel axis as given. */
  readonly axis: number;
  /** Momentum of the moving averages. */
  readonly momentum: number;
  /** Initializer of the moving mean. */
  readonly movingMeanInitializer: Initializer;
  /** Initializer of the moving variance. */
  readonly movingVarianceInitializer: Initializer;
  /** Keras's `synchronized` (no effect in one process). */
  readonly synchronized: boolean;
  /** Batch renormalization. */
  readonly renorm: boolean;
  /** The renorm clipping as given (null: none). */
  readonly renormClipping: RenormClipping|null;
  /** Momentum of the renorm statistics. */
  readonly renormMomentum: number;
  private movingMean: tf.LayerVariable|null = null;
  private movingVariance: tf.LayerVariable|null = null;
  private movingStddev: tf.LayerVariable|null = null;
  private renormMean: tf.LayerVariable|null = null;
  private renormStddev: tf.LayerVariable|null = null;
  /** The batch-statistics plan of the last training input shape (shapes repeat step after step). */
  private plan: {shape: number[], plan: BatchNormPlan}|null = null;
  /** The moving statistics this layer last wrote on a CPU backend (see {@link movingValues}). */
  private written: WrittenStats|null = null;

  constructor(args: BatchNormalizationArgs = {}) {
    super(args, 1e-3);
    const who = this.who;
    this.axis = checkIntegerAxis(who, 'axis', args.axis ?? -1);
    this.momentum = checkMomentum(who, 'momentum', args.momentum ?? 0.99);
    this.movingMeanInitializer = getInitializer(who, 'movingMeanInitializer', args.movingMeanInitializer ?? 'zeros');
    this.movingVarianceInitializer = getInitializer(who, 'movingVarianceInitializer', args.movingVarianceInitializer ?? 'ones');
    this.synchronized = checkBoolean(who, 'synchronized', args.synchronized ?? false);
    this.renorm = checkBoolean(who, 'renorm', args.renorm ?? false);
    this.renormClipping = checkClipping(who, args.renormClipping);
    this.renormMomentum = checkMomentum(who, 'renormMomentum', args.renormMomentum ?? 0.99);
  }

  protected buildShape(shape: tf.Shape): void {
    checkChannelsRank(this.who, shape);
    const a = resolveAxis(this.who, 'axis', this.axis, shape.length);
    const C = shape[a];
    if (C == null) {
      throw new Error(
          `${this.who}: argument 'axis' (${this.axis}) points at a dimension that is undefined in input shape ` +
          `${show(shape)}; the channel dimension must be known when the layer is built.`);
    }
    this.inputSpec = [new tf.InputSpec({ndim: shape.length, axes: {[a]: C}})];
    this.buildAffine([C]);
    const stat = {trainable: false};
    this.movingMean = this.addParam('moving_mean', [C], this.movingMeanInitializer, stat);
    this.movingVariance = this.addParam('moving_variance', [C], this.movingVarianceInitializer, stat);
    if (this.renorm) {
      // As Keras: the stddevs start at sqrt(the moving variance initializer), renorm_mean as the moving mean.
      const zeros = tf.initializers.zeros();
      this.movingStddev = this.addParam('moving_stddev', [C], zeros, stat);
      this.renormMean = this.addParam('renorm_mean', [C], this.movingMeanInitializer, stat);
      this.renormStddev = this.addParam('renorm_stddev', [C], zeros, stat);
      tf.tidy(() => {
        const std = tf.sqrt(this.movingVarianceInitializer.apply([C], 'float32'));
        this.movingStddev?.write(std);
        this.renormStddev?.write(tf.clone(std));
      });
    }
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null, training: boolean): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    const frozen = this.frozen();
    if (training && !frozen) return this.renorm ? this.callRenorm(x, mask) : this.callTraining(x, mask);
    return this.callInference(x, frozen);
  }

  /**
   * Frozen, as Keras's `trainable = False`: inference mode in every call,
   * the weights constants to the gradient. The layer's own `trainable`
   * false, or its gamma and beta (those it has) all non-trainable weights:
   * tfjs's `model.trainable = false` on a container (Keras's way to freeze
   * a backbone) flags the weights of the layers inside, not the layers, and
   * Keras freezes the layers. A layer without gamma and beta frozen that
   * way cannot be told apart (docs/guarantees.md).
   */
  private frozen(): boolean {
    if (!this.trainable) return true;
    const affine = [this.gamma, this.beta].filter((w): w is tf.LayerVariable => w != null);
    return affine.length > 0 && affine.every((w) => !w.trainable);
  }

  /** The batch-statistics plan of x's shape (x checked by forward; gamma and beta are the layer's own [C] weights). */
  private planOf(x: tf.Tensor): BatchNormPlan {
    const p = this.plan;
    if (p != null && p.shape.length === x.rank && p.shape.every((d, i) => d === x.shape[i])) return p.plan;
    const plan = batchNormPlan(this.who, x.shape, this.axis, this.epsilon);
    this.plan = {shape: x.shape.slice(), plan};
    return plan;
  }

  private variables(): {mean: tf.LayerVariable, variance: tf.LayerVariable} {
    if (this.movingMean == null || this.movingVariance == null) throw new Error(`${this.who}: called before it was built.`);
    return {mean: this.movingMean, variance: this.movingVariance};
  }

  /** Channel-axis broadcast shape for x. */
  private broadcastShape(x: tf.Tensor): number[] {
    const a = resolveAxis(this.who, 'axis', this.axis, x.rank);
    return x.shape.map((d, i) => (i === a ? d : 1));
  }

  private callInference(x: tf.Tensor, frozen: boolean): tf.Tensor {
    const {mean, variance} = this.variables();
    const a = resolveAxis(this.who, 'axis', this.axis, x.rank);
    // Frozen: the gradient reaches x alone, the weights constants to it
    // (none is trainable); otherwise gamma, beta and the moving statistics
    // get theirs too.
    return batchNormInference(x, mean.read(), variance.read(), this.readGamma(), this.readBeta(), a, this.epsilon,
                              !frozen);
  }

  private callTraining(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    const {mean, variance} = this.variables();
    const m = this.momentum;
    const eps = this.epsilon;
    // The update runs inside the forward (untaped), from the batch statistics:
    // in float64 on backends whose data is on the CPU (a few reads of C
    // values cost less than the small ops); elsewhere in one kernel from the
    // fused forward's statistics (webgl, webgpu: src/kernels/moving_update.ts),
    // else in tf ops.
    return batchNormWithPlan(this.who, x, this.planOf(x), this.readGamma(), this.readBeta(), mask, (batch) => {
      const saved = batch.saved();
      if (CPU_BACKENDS.has(tf.getBackend())) {
        const {mean: cm, variance: cv} = this.movingValues(mean, variance);
        const nm = new Float32Array(cm.length);
        const nv = new Float32Array(cv.length);
        if (saved != null) {
          // From m1, m2, inv directly: the arithmetic of Moments.values(), without its two float64 arrays.
          const [hi, lo, inv] = saved.map((t) => t.dataSync());
          for (let i = 0; i < nm.length; i++) {
            const mu = hi[i] + lo[i];
            nm[i] = cm[i] * m + mu * (1 - m);
            nv[i] = cv[i] * m + varianceOfSet(mu, inv[i], eps) * (1 - m);
          }
        } else {
          const b = batch.values();
          for (let i = 0; i < nm.length; i++) {
            nm[i] = cm[i] * m + b.mean[i] * (1 - m);
            nv[i] = cv[i] * m + b.variance[i] * (1 - m);
          }
        }
        const tm = tf.tensor1d(nm, 'float32');
        const tv = tf.tensor1d(nv, 'float32');
        mean.write(tm);
        variance.write(tv);
        this.written = {meanData: tm.dataId, varianceData: tv.dataId, mean: nm, variance: nv};
        return;
      }
      const fused = saved && fusedMovingUpdate(mean.read(), variance.read(), saved, m, eps);
      if (fused != null) {
        mean.write(fused[0]);
        variance.write(fused[1]);
        return;
      }
      mean.write(tf.add(tf.mul(mean.read(), m), tf.mul(batch.mean(), 1 - m)));
      variance.write(tf.add(tf.mul(variance.read(), m), tf.mul(batch.variance(), 1 - m)));
    });
  }

  /**
   * The moving statistics' current values on a CPU backend: the arrays this
   * layer wrote last step while both variables still hold that write's
   * data (tfjs data is immutable, and any other write, setWeights or a
   * weights load included, gives a variable new data), else read back.
   */
  private movingValues(mean: tf.LayerVariable, variance: tf.LayerVariable): {mean: Float32Array, variance: Float32Array} {
    const w = this.written;
    const mr = mean.read();
    const vr = variance.read();
    if (w != null && mr.dataId === w.meanData && vr.dataId === w.varianceData) return w;
    this.written = null;
    return {mean: mr.dataSync() as Float32Array, variance: vr.dataSync() as Float32Array};
  }

  /** Keras 3's renorm path: _renorm_correction_and_moments, _compose_transforms, _update_renorm_statistics. */
  private callRenorm(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    const {mean: movingMean, variance: movingVariance} = this.variables();
    const movingStddev = this.movingStddev as tf.LayerVariable;
    const renormMean = this.renormMean as tf.LayerVariable;
    const renormStddev = this.renormStddev as tf.LayerVariable;
    const eps = this.epsilon;
    const corr: {r?: tf.Tensor, d?: tf.Tensor} = {};
    // Inside the forward (untaped: r and d are constants to the gradient, as Keras's stop_gradient):
    // the corrections from the renorm statistics before this step, then every update.
    const xhat = batchNormWithPlan(this.who, x, this.planOf(x), null, null, mask, (batch) => {
      const mean = batch.mean();
      const variance = batch.variance();
      const stddev = tf.sqrt(tf.add(variance, eps));
      const rs = tf.maximum(renormStddev.read(), Math.sqrt(Math.fround(eps)));
      let rr = tf.div(stddev, rs);
      let dd = tf.div(tf.sub(mean, renormMean.read()), rs);
      const c = this.renormClipping ?? {};
      if (c.rmin != null) rr = tf.maximum(rr, c.rmin);
      if (c.rmax != null) rr = tf.minimum(rr, c.rmax);
      if (c.dmax != null) dd = tf.clipByValue(dd, -c.dmax, c.dmax);
      corr.r = tf.keep(rr);
      corr.d = tf.keep(dd);
      const rm = this.renormMomentum;
      const m = this.momentum;
      renormMean.write(tf.add(tf.mul(renormMean.read(), rm), tf.mul(mean, 1 - rm)));
      renormStddev.write(tf.add(tf.mul(renormStddev.read(), rm), tf.mul(stddev, 1 - rm)));
      movingMean.write(tf.add(tf.mul(movingMean.read(), m), tf.mul(mean, 1 - m)));
      const newStddev = tf.add(tf.mul(movingStddev.read(), m), tf.mul(stddev, 1 - m));
      movingStddev.write(newStddev);
      movingVariance.write(tf.relu(tf.sub(tf.mul(newStddev, newStddev), eps)));
    });
    try {
      return tf.tidy(() => {
        const gamma = this.readGamma();
        const beta = this.readBeta();
        const rc = corr.r as tf.Tensor;
        const dc = corr.d as tf.Tensor;
        const g = gamma ? tf.mul(rc, gamma) : rc;
        let b = gamma ? tf.mul(dc, gamma) : dc;
        if (beta) b = tf.add(b, beta);
        const shape = this.broadcastShape(x);
        if (mask == null) return tf.add(tf.mul(xhat, tf.reshape(g, shape)), tf.reshape(b, shape));
        return this.composeMasked(xhat, g, b, shape, mask);
      });
    } finally {
      xhat.dispose();
      tf.dispose([corr.r, corr.d].filter((t): t is tf.Tensor => t != null));
    }
  }

  /**
   * `xhat * g + b` (g and b of shape [C], broadcast as `shape`) whose
   * gradient treats the outputs at masked positions as don't-cares, as the
   * masked normalization does (docs/guarantees.md): dy and xhat there are
   * replaced by 0 before the sums of dg and db, so padding (even NaN or Inf,
   * which normalizes to NaN or Inf) never reaches the gradients of gamma and
   * beta; dxhat at a masked position is dropped by the normalization's own
   * backward. The forward is the plain expression (masked outputs are the
   * padding normalized with the valid positions' statistics, as Keras's).
   */
  private composeMasked(xhat: tf.Tensor, g: tf.Tensor, b: tf.Tensor, shape: number[], mask: tf.Tensor): tf.Tensor {
    const a = resolveAxis(this.who, 'axis', this.axis, shape.length);
    const axes = shape.map((_, i) => i).filter((i) => i !== a);
    const prepared = prepareMask(this.who, mask, xhat.shape) as tf.Tensor;
    // Flat: webgl's and webgpu's Select stop at rank 4.
    const cond = tf.greater(tf.reshape(fullSize(prepared, xhat.shape), [-1]), 0);
    const compose = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
      const [xh, gg, bb] = args as tf.Tensor[];
      (args[3] as tf.GradSaveFunc)([xh, gg, cond]);
      return {
        value: tf.add(tf.mul(xh, tf.reshape(gg, shape)), tf.reshape(bb, shape)),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, gs, c] = saved;
          const zero = tf.zeros([dy.size]);
          const dyv = tf.reshape(tf.where(c, tf.reshape(dy, [-1]), zero), dy.shape);
          const xv = tf.reshape(tf.where(c, tf.reshape(xs, [-1]), zero), xs.shape);
          return [tf.mul(dyv, tf.reshape(gs, shape)), tf.reshape(tf.sum(tf.mul(dyv, xv), axes), gs.shape),
                  tf.reshape(tf.sum(dyv, axes), gs.shape)];
        },
      };
    });
    return compose(xhat, g, b);
  }

  protected argsConfig(): ConfigDict {
    const {epsilon, center, scale, betaInitializer, gammaInitializer, ...rest} = this.affineConfig();
    // Keras's extras beyond tfjs's keys: written only when used.
    const extras: ConfigDict = {};
    if (this.synchronized) extras.synchronized = true;
    if (this.renorm) {
      extras.renorm = true;
      extras.renormClipping = {...(this.renormClipping ?? {})} as ConfigDict;
      extras.renormMomentum = this.renormMomentum;
    }
    return {
      axis: this.axis, momentum: this.momentum, epsilon, center, scale, betaInitializer,
      gammaInitializer, movingMeanInitializer: serialize(this.movingMeanInitializer) as unknown as ConfigDict,
      movingVarianceInitializer: serialize(this.movingVarianceInitializer) as unknown as ConfigDict, ...rest, ...extras,
    };
  }
}
