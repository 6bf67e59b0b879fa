import * as tf from '@tensorflow/tfjs';

import {OP_DEFAULTS} from '../ops/defaults';
import {GroupLayout, groupNormView, resolveGroupLayout} from '../ops/group_norm';
import {maskView, prepareMask, setOps} from '../ops/mask';
import {argError, checkBoolean, checkFloatTensor, checkIntegerAxis} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization, MaskingArgs} from './base';
import {ConfigDict} from './common';
import {buildChannelSpec, groupNormLayer} from './group_normalization';
import {loadInstanceNormalization} from './instance_flavours';

/** Arguments of {@link InstanceNormalization}. */
export interface InstanceNormalizationArgs extends AffineArgs, MaskingArgs {
  /** The channel axis. Default -1. */
  axis?: number;
  /**
   * PyTorch's `track_running_stats`: in training, normalize with instance
   * statistics and update running estimates; in inference, normalize with
   * the running estimates. Default false (instance statistics always).
   */
  trackRunningStats?: boolean;
  /**
   * Weight of the new batch in the running estimates, as PyTorch:
   * `running = (1 - momentum) * running + momentum * batch`. Default 0.1.
   */
  momentum?: number;
}

/**
 * Instance normalization (Ulyanov et al., 2016): each channel of each
 * sample is normalized over every non-batch, non-channel axis. Defaults as
 * TensorFlow Addons' `InstanceNormalization`:
 *
 * - `axis` (-1): the channel axis.
 * - `epsilon` (1e-3): added to the variance.
 * - `center` (true) / `scale` (true): learn a per-channel `beta` / `gamma`.
 * - `betaInitializer` ('zeros'), `gammaInitializer` ('ones'), and optional
 *   regularizers and constraints for both.
 *
 * - `trackRunningStats` (false), `momentum` (0.1): PyTorch's running
 *   statistics (non-trainable weights `moving_mean` and `moving_variance`,
 *   saved with the model): training uses instance statistics and updates
 *   `running = (1 - momentum) * running + momentum * batch_mean_of(instance
 *   statistic)`, with the unbiased instance variance; inference uses the
 *   running statistics.
 *
 * - `masking` ('statistics'): what it does with tfjs's mask (see
 *   {@link MaskingMode}).
 *
 * Without running statistics it is GroupNormalization with `groups: -1`.
 */
export class InstanceNormalization extends AffineNormalization {
  /** The serialization class name, `InstanceNormalization`. */
  static className = 'InstanceNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['axis', ...AFFINE_KEYS, 'trackRunningStats', 'momentum', 'masking'];
  /** The channel axis as given. */
  readonly axis: number;
  /** Whether running statistics are kept and used in inference (PyTorch's `track_running_stats`). */
  readonly trackRunningStats: boolean;
  /** Weight of the new batch in the running statistics. */
  readonly momentum: number;
  private movingMean: tf.LayerVariable|null = null;
  private movingVariance: tf.LayerVariable|null = null;

  private layout: GroupLayout|null = null;

  constructor(args: InstanceNormalizationArgs = {}) {
    super(args, OP_DEFAULTS.instanceNorm.epsilon);
    this.axis = checkIntegerAxis(this.who, 'axis', args.axis ?? OP_DEFAULTS.instanceNorm.axis);
    this.trackRunningStats = checkBoolean(this.who, 'trackRunningStats', args.trackRunningStats ?? false);
    const momentum = args.momentum ?? 0.1;
    if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
      throw argError(this.who, 'momentum', momentum, 'a number in [0, 1]');
    }
    this.momentum = momentum;
    this.parseMasking(args.masking, 'statistics');
  }

  protected buildShape(shape: tf.Shape): void {
    this.layout = buildChannelSpec(this, this.who, shape, -1, this.axis);
    const channels = this.layout.channels;
    this.buildAffine([channels]);
    if (this.trackRunningStats) {
      this.movingMean = this.addParam('moving_mean', [channels], tf.initializers.zeros(), {trainable: false});
      this.movingVariance = this.addParam('moving_variance', [channels], tf.initializers.ones(), {trainable: false});
    }
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null, training: boolean): tf.Tensor {
    if (this.movingMean && this.movingVariance && !training) {
      return this.normalizeWithRunningStats(x, this.movingMean.read(), this.movingVariance.read());
    }
    const y = groupNormLayer(
        this.who, x, this.layout, -1, this.axis, this.epsilon, this.readGamma(), this.readBeta(), mask);
    if (this.movingMean && this.movingVariance) this.updateRunningStats(x, mask, this.movingMean, this.movingVariance);
    return y;
  }

  /** The layout resolved at build, or (direct call() use) from x. */
  private layoutFor(x: tf.Tensor): GroupLayout {
    return this.layout ?? resolveGroupLayout(this.who, x.shape, -1, this.axis);
  }

  /** Inference with running statistics: a per-channel affine map. */
  private normalizeWithRunningStats(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    const a = this.layoutFor(x).axis;
    return tf.tidy(() => {
      const gamma = this.readGamma();
      const beta = this.readBeta();
      const inv = tf.rsqrt(tf.add(variance, this.epsilon));
      const scale = gamma ? tf.mul(inv, gamma) : inv;
      const shift = tf.sub(beta ?? tf.zerosLike(mean), tf.mul(mean, scale));
      const shape = x.shape.map((d, i) => (i === a ? d : 1));
      return tf.add(tf.mul(x, tf.reshape(scale, shape)), tf.reshape(shift, shape));
    });
  }

  /**
   * running = (1 - momentum) * running + momentum * (batch mean of the
   * instance means / unbiased instance variances), valid positions only:
   * the masked moments of mask.ts's set reductions, which normalize() takes too.
   */
  private updateRunningStats(x: tf.Tensor, mask: tf.Tensor|null, mean: tf.LayerVariable, variance: tf.LayerVariable): void {
    const plan = groupNormView(x.shape, this.layoutFor(x), this.epsilon);
    const m = prepareMask(this.who, mask, x.shape);
    tf.tidy(() => {
      const R = plan.reduceAxes;
      const xv = tf.reshape(x, plan.viewShape);
      const set = setOps(R, plan.viewShape, m ? maskView(m, x.shape, plan.viewShape) : null);
      const count = set.count();
      const instMean = set.avg(xv);
      const biased = set.avg(tf.square(tf.sub(xv, instMean)));
      const unbiased = tf.where(tf.greater(count, 1), tf.div(tf.mul(biased, count), tf.sub(count, 1)), biased);
      const C = plan.channels;
      const batchMean = tf.mean(tf.reshape(instMean, [-1, C]), 0);
      const batchVar = tf.mean(tf.reshape(unbiased, [-1, C]), 0);
      const k = this.momentum;
      mean.write(tf.add(tf.mul(mean.read(), 1 - k), tf.mul(batchMean, k)));
      variance.write(tf.add(tf.mul(variance.read(), 1 - k), tf.mul(batchVar, k)));
    });
    m?.dispose();
  }

  /**
   * The config carries `groups: -1`: it is then exactly Keras's
   * GroupNormalization config (so Keras loads it with
   * `custom_objects={'InstanceNormalization': keras.layers.GroupNormalization}`),
   * and it tells this flavour apart from keras-contrib's when loading.
   */
  protected argsConfig(): ConfigDict {
    // The running-statistics keys are this package's extension: written only when used.
    const running: ConfigDict = this.trackRunningStats ? {trackRunningStats: true, momentum: this.momentum} : {};
    return {groups: -1, axis: this.axis, ...this.affineConfig(), ...running, ...this.maskingConfig('statistics')};
  }

  /**
   * Deserializes any flavour of a layer saved as 'InstanceNormalization'.
   * The config's own keys (not name, trainable, dtype or input shape)
   * decide, see {@link instanceNormalizationFlavour}.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return loadInstanceNormalization(InstanceNormalization, config) as unknown as T;
  }
}
