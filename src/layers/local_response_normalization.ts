import * as tf from '@tensorflow/tfjs';

import {LocalResponseNormOptions, localResponseNormImpl, LrnConvention, lrnConfigKeys, LrnParams, lrnParams} from '../ops/local_response_norm';
import {resolveAxis} from '../ops/validate';
import {NormalizationLayer} from './base';
import {ConfigDict, LAYER_BASE_KEYS, LayerArgs} from './common';

/** Arguments of {@link LocalResponseNormalization}: `ops.localResponseNorm`'s options. */
export interface LocalResponseNormalizationArgs extends LayerArgs, LocalResponseNormOptions {}

/**
 * Local response normalization across channels as a layer (no weights):
 * `tf.nn.local_response_normalization`'s arguments by default
 * (`depthRadius` 5, `bias` 1, `alpha` 1, `beta` 0.5, channels last), or with
 * `convention: 'pytorch'` those of `torch.nn.LocalResponseNorm(size, alpha,
 * beta, k)` (alpha divided by size, PyTorch's window for even sizes, channels
 * at axis 1). See `ops.localResponseNorm`. Masks pass through.
 */
export class LocalResponseNormalization extends NormalizationLayer {
  /** The serialization class name, `LocalResponseNormalization`. */
  static className = 'LocalResponseNormalization';
  /** The keys of its arguments besides tf.layers.Layer's (both conventions'). */
  static override readonly argKeys: readonly string[] = ['convention', 'axis', 'depthRadius', 'bias', 'alpha', 'beta', 'size', 'k'];
  /** The convention the arguments follow. */
  readonly convention: LrnConvention;
  /** The channel axis as given. */
  readonly axis: number;
  /** The arguments as given or defaulted, in the convention's own names. */
  private readonly own: Record<string, number>;
  private readonly params: LrnParams;

  constructor(args: LocalResponseNormalizationArgs = {}) {
    super(args);
    const opts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(args ?? {})) if (!LAYER_BASE_KEYS.includes(k) && k !== 'customObjects') opts[k] = v;
    this.params = lrnParams(this.who, opts as LocalResponseNormOptions, 'args');
    this.convention = this.params.convention;
    this.axis = this.params.axis;
    const p = this.params;
    this.own = p.convention === 'tensorflow' ?
        {depthRadius: p.before, bias: p.bias, alpha: p.alpha, beta: p.beta} :
        {size: p.before + p.after + 1, alpha: (opts.alpha as number|undefined) ?? 1e-4, beta: p.beta, k: p.bias};
  }

  protected buildShape(shape: tf.Shape): void {
    resolveAxis(this.who, 'axis', this.axis, shape.length);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return localResponseNormImpl(x, this.params, this.who);
  }

  /** The convention, the axis and the convention's own arguments (nothing of the other's). */
  protected argsConfig(): ConfigDict {
    const keys = lrnConfigKeys(this.convention).filter((k) => k !== 'convention' && k !== 'axis');
    return {convention: this.convention, axis: this.axis, ...Object.fromEntries(keys.map((k) => [k, this.own[k]]))};
  }
}
