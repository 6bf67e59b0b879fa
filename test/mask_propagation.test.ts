/**
 * The mask that leaves each registered layer class, in a real tf.model:
 * input -> masking -> the layer -> a probe that records the mask it is
 * handed, and for [batch, time, features] layers also -> LSTM, whose output
 * depends on whether the mask reaches it. Each class does what its
 * reference framework does (Keras 3.15's `supports_masking`, checked in the
 * Keras venv; TensorFlow Addons' sources):
 *
 * - passes the mask on unchanged: Keras 3's BatchNormalization,
 *   GroupNormalization, LayerNormalization, UnitNormalization; TFA's
 *   GroupNormalization / InstanceNormalization, FilterResponseNormalization
 *   and TLU (`self.supports_masking = True`); this package's
 *   InstanceNormalization and LocalResponseNormalization (no Keras layer);
 * - drops it: Keras 3's SpectralNormalization and TFA's
 *   WeightNormalization (Keras wrappers do not support masking; Keras warns
 *   that the mask is destroyed and downstream layers see none),
 *   and WSConv2D / WSConv1D (Keras 3's conv layers do not support masking;
 *   tfjs's conv layers, which they extend, would throw in computeMask);
 * - RMSNormalization passes it on, where Keras 3's does not support masking
 *   (it drops the mask): this package's RMSNormalization uses the mask in
 *   its statistics over a list of axes (docs/guarantees.md), so it keeps it;
 *   `masking: 'drop'` (set on Keras 3 models by the translation) drops it.
 *
 * The `masking` argument of GN, IN, LN and RMS (and TFA's classes, whose
 * default is 'propagate'): 'statistics', 'propagate', 'drop', in a model.
 */
import * as tf from '@tensorflow/tfjs';

import {
  AddonsGroupNormalization, AddonsInstanceNormalization, BatchNormalization, FilterResponseNormalization, GroupNormalization,
  InstanceNormalization, LayerNormalization, LocalResponseNormalization, RMSNormalization, SpectralNormalization, TLU,
  UnitNormalization, WeightNormalization, WSConv1D, WSConv2D,
} from '../src';
import {REGISTERED_CLASSES} from '../src/register';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A layer that records the mask the model hands it and returns its input. */
class MaskProbe extends tf.layers.Layer {
  static className = 'MaskProbe';
  seen: Array<number[]|null> = [];

  constructor() {
    super({});
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: {mask?: tf.Tensor}): tf.Tensor {
    this.seen.push(kwargs.mask ? Array.from(kwargs.mask.dataSync()) : null);
    return tf.clone(Array.isArray(inputs) ? inputs[0] : inputs);
  }
}

type Behaviour = 'passes'|'drops';

const SEQ = [3, 5, 4];  // [batch, time, features]
const IMG = [2, 3, 3, 4];  // [batch, height, width, channels]

const CASES: Array<{cls: {className: string}, make: () => tf.layers.Layer, shape: number[], behaviour: Behaviour}> = [
  {cls: GroupNormalization, make: () => new GroupNormalization({groups: 2}), shape: SEQ, behaviour: 'passes'},
  {cls: InstanceNormalization, make: () => new InstanceNormalization(), shape: SEQ, behaviour: 'passes'},
  {cls: LayerNormalization, make: () => new LayerNormalization(), shape: SEQ, behaviour: 'passes'},
  {cls: RMSNormalization, make: () => new RMSNormalization({axis: [1, 2]}), shape: SEQ, behaviour: 'passes'},
  {cls: AddonsGroupNormalization, make: () => new AddonsGroupNormalization({groups: 2}), shape: SEQ, behaviour: 'passes'},
  {cls: AddonsInstanceNormalization, make: () => new AddonsInstanceNormalization(), shape: SEQ, behaviour: 'passes'},
  {cls: UnitNormalization, make: () => new UnitNormalization(), shape: SEQ, behaviour: 'passes'},
  {cls: LocalResponseNormalization, make: () => new LocalResponseNormalization({depthRadius: 1}), shape: SEQ, behaviour: 'passes'},
  {cls: WSConv2D, make: () => new WSConv2D({filters: 4, kernelSize: 1}), shape: IMG, behaviour: 'drops'},
  {cls: WSConv1D, make: () => new WSConv1D({filters: 4, kernelSize: 1}), shape: SEQ, behaviour: 'drops'},
  {cls: FilterResponseNormalization, make: () => new FilterResponseNormalization(), shape: IMG, behaviour: 'passes'},
  {cls: TLU, make: () => new TLU({tauInitializer: 'ones'}), shape: SEQ, behaviour: 'passes'},
  {cls: SpectralNormalization, make: () => new SpectralNormalization({layer: tf.layers.dense({units: 4})}), shape: SEQ, behaviour: 'drops'},
  {cls: WeightNormalization, make: () => new WeightNormalization({layer: tf.layers.dense({units: 4})}), shape: SEQ, behaviour: 'drops'},
  {cls: BatchNormalization, make: () => new BatchNormalization(), shape: SEQ, behaviour: 'passes'},
];

/** x with masked (all-zero) trailing steps: sample 0 from step 3 on (or row 2 of an image), sample 1 its last step. */
function inputOf(shape: number[]): {x: tf.Tensor, mask: number[]} {
  const T = shape[1];
  const per = shape.slice(2).reduce((a, b) => a * b, 1);
  const valid = (n: number, t: number) => !((n === 0 && t >= T - 2) || (n === 1 && t === T - 1));
  const values = tf.randomNormal(shape, 0.5, 1, 'float32', 3).dataSync().map((v, i) => {
    const n = Math.floor(i / (T * per));
    const t = Math.floor(i / per) % T;
    return valid(n, t) ? v + 3 : 0;  // + 3: no valid value is 0
  });
  const maskShape = shape.slice(0, -1);
  const mask = Array.from({length: maskShape.reduce((a, b) => a * b, 1)}, (_, k) => {
    const inner = maskShape.slice(2).reduce((a, b) => a * b, 1);
    return valid(Math.floor(k / (T * inner)), Math.floor(k / inner) % T) ? 1 : 0;
  });
  return {x: tf.tensor(values, shape), mask};
}

describe('mask propagation: every registered layer class as its reference framework', () => {
  test('the table covers every registered class', () => {
    expect(CASES.map((c) => c.cls.className).sort()).toEqual(REGISTERED_CLASSES.map((c) => c.className).sort());
  });

  test.each(CASES.map((c) => [c.cls.className, c] as const))('%s: masking -> layer -> probe', (_name, c) => {
    const input = tf.input({shape: c.shape.slice(1)});
    const masked = tf.layers.masking({maskValue: 0}).apply(input) as tf.SymbolicTensor;
    const layer = c.make();
    const probe = new MaskProbe();
    const model = tf.model({inputs: input, outputs: probe.apply(layer.apply(masked)) as tf.SymbolicTensor});
    const {x, mask} = inputOf(c.shape);
    tf.dispose(model.predict(x) as tf.Tensor);
    expect(layer.supportsMasking).toBe(c.behaviour === 'passes');
    expect(probe.seen).toEqual([c.behaviour === 'passes' ? mask : null]);
    // And the layer's own computeMask, called directly.
    const m = tf.tensor(mask, c.shape.slice(0, -1), 'bool');
    const out = layer.computeMask(x, m);
    expect(c.behaviour === 'passes' ? out === m : out == null).toBe(true);
    tf.dispose([x, m]);
    model.dispose();
  });

  test.each(CASES.filter((c) => c.shape === SEQ).map((c) => [c.cls.className, c] as const))(
      '%s: masking -> layer -> LSTM: the LSTM computes with the mask exactly when the layer passes it on', (_name, c) => {
        const input = tf.input({shape: SEQ.slice(1)});
        const layer = c.make();
        const lstm = tf.layers.lstm({units: 3, kernelInitializer: tf.initializers.glorotNormal({seed: 1}),
          recurrentInitializer: tf.initializers.glorotNormal({seed: 2})});
        const model = tf.model({inputs: input,
          outputs: lstm.apply(layer.apply(tf.layers.masking({maskValue: 0}).apply(input))) as tf.SymbolicTensor});
        const {x, mask} = inputOf(SEQ);
        const got = model.predict(x) as tf.Tensor;
        // The same layers by hand: the layer with Masking's mask, then the LSTM with or without it.
        const m = tf.tensor(mask, SEQ.slice(0, 2), 'bool');
        const h = layer.apply(x, {mask: m}) as tf.Tensor;
        const withMask = lstm.apply(h, {mask: m}) as tf.Tensor;
        const without = lstm.apply(h) as tf.Tensor;
        const diff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
        expect(diff(withMask, without)).toBeGreaterThan(1e-3);  // the mask matters to the LSTM here
        expect(diff(got, c.behaviour === 'passes' ? withMask : without)).toBeLessThan(1e-6);
        tf.dispose([x, m, got, h, withMask, without]);
        model.dispose();
      });
});

describe("the masking argument (GroupNormalization, InstanceNormalization, LayerNormalization, RMSNormalization; TFA's classes)", () => {
  const LAYERS: Array<[string, (masking?: 'statistics'|'propagate'|'drop') => tf.layers.Layer]> = [
    ['GroupNormalization', (masking) => new GroupNormalization({groups: 2, masking})],
    ['InstanceNormalization', (masking) => new InstanceNormalization({masking})],
    ['LayerNormalization', (masking) => new LayerNormalization({axis: [1, 2], masking})],
    ['RMSNormalization', (masking) => new RMSNormalization({axis: [1, 2], masking})],
    ['Addons>GroupNormalization', (masking) => new AddonsGroupNormalization({groups: 2, masking})],
  ];
  const modes = ['statistics', 'propagate', 'drop'] as const;

  test.each(LAYERS.flatMap(([name, make]) => modes.map((m) => [name, m, make] as const)))(
      '%s, masking %s: masking -> layer -> probe -> LSTM in a model: the statistics with or without the mask, the mask passed on or not',
      (_name, mode, make) => {
        const input = tf.input({shape: SEQ.slice(1)});
        const layer = make(mode);
        const probe = new MaskProbe();
        const lstm = tf.layers.lstm({units: 3, kernelInitializer: tf.initializers.glorotNormal({seed: 1}),
          recurrentInitializer: tf.initializers.glorotNormal({seed: 2})});
        const normed = layer.apply(tf.layers.masking({maskValue: 0}).apply(input)) as tf.SymbolicTensor;
        const model = tf.model({inputs: input, outputs: [normed, lstm.apply(probe.apply(normed)) as tf.SymbolicTensor]});
        const {x, mask} = inputOf(SEQ);
        const [y, z] = model.predict(x) as tf.Tensor[];
        const m = tf.tensor(mask, SEQ.slice(0, 2), 'bool');
        const unmaskedStats = layer.apply(x) as tf.Tensor;
        const maskedStats = (mode === 'statistics' ? layer : make('statistics')).apply(x, {mask: m}) as tf.Tensor;
        const bits = (t: tf.Tensor) => Array.from(t.dataSync());
        expect(bits(maskedStats)).not.toEqual(bits(unmaskedStats));  // the statistics span the masked steps
        expect(bits(y)).toEqual(bits(mode === 'statistics' ? maskedStats : unmaskedStats));
        expect(probe.seen).toEqual([mode === 'drop' ? null : mask]);
        const withMask = lstm.apply(y, {mask: m}) as tf.Tensor;
        const without = lstm.apply(y) as tf.Tensor;
        expect(bits(z)).toEqual(bits(mode === 'drop' ? without : withMask));
        expect(layer.supportsMasking).toBe(mode !== 'drop');
        tf.dispose([x, m, y, z, unmaskedStats, maskedStats, withMask, without]);
        model.dispose();
      });

  test("config: 'masking' written only where it differs from the class's default (TFA's: 'propagate'), and read back; a bad value is a named error", () => {
    for (const [name, make] of LAYERS) {
      const dflt = name.startsWith('Addons') ? 'propagate' : 'statistics';
      expect([name, make().getConfig().masking]).toEqual([name, undefined]);
      for (const mode of modes) {
        const cfg = make(mode).getConfig();
        expect([name, mode, cfg.masking]).toEqual([name, mode, mode === dflt ? undefined : mode]);
        const cls = make().constructor as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer> &
            {fromConfig: (c: unknown, config: tf.serialization.ConfigDict) => tf.layers.Layer};
        const back = cls.fromConfig(cls, cfg);
        expect([name, mode, back.getConfig().masking]).toEqual([name, mode, cfg.masking]);
        expect(back.supportsMasking).toBe(mode !== 'drop');
      }
    }
    expect(() => new GroupNormalization({groups: 2, name: 'g', masking: 'ignore' as 'drop'})).toThrow(
        "GroupNormalization layer 'g': argument 'masking' must be one of 'statistics', 'propagate', 'drop'; received \"ignore\".");
  });
});
