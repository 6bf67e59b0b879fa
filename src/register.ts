/**
 * The one place where this package's layer classes enter
 * tf.serialization's registry, so that `tf.loadLayersModel` and
 * `tf.models.modelFromJSON` find them. Runs once, on import of the package.
 *
 * LayerNormalization and BatchNormalization are registered under the
 * built-ins' classNames on purpose: they replace the built-in entries, so
 * a saved `tf.layers.layerNormalization` or `tf.layers.batchNormalization`
 * loads into this package's class.
 */
import * as tf from '@tensorflow/tfjs';

import {AddonsGroupNormalization, AddonsInstanceNormalization} from './layers/addons';
import {FilterResponseNormalization, TLU} from './layers/filter_response_normalization';
import {BatchNormalization} from './layers/batch_normalization';
import {GroupNormalization} from './layers/group_normalization';
import {InstanceNormalization} from './layers/instance_normalization';
import {LayerNormalization} from './layers/layer_normalization';
import {LocalResponseNormalization} from './layers/local_response_normalization';
import {RMSNormalization} from './layers/rms_normalization';
import {SpectralNormalization} from './layers/spectral_normalization';
import {UnitNormalization} from './layers/unit_normalization';
import {WeightNormalization} from './layers/weight_normalization';
import {WSConv1D, WSConv2D} from './layers/weight_standardization';
import {warnIfForeignEngine} from './tfjs_instance';

/**
 * 'InstanceNormalization' is registered once, with the class whose
 * fromConfig picks the flavour (this package's, keras-contrib's or
 * pix2pix's) from the config's keys.
 */
export const REGISTERED_CLASSES = [
  GroupNormalization, InstanceNormalization, LayerNormalization, RMSNormalization, AddonsGroupNormalization,
  AddonsInstanceNormalization,
  UnitNormalization, LocalResponseNormalization, WSConv2D, WSConv1D, FilterResponseNormalization, TLU,
  SpectralNormalization, WeightNormalization, BatchNormalization,
];

for (const cls of REGISTERED_CLASSES) {
  tf.serialization.registerClass(cls);
}

// Another copy of tfjs-core loaded first: say so (src/tfjs_instance.ts).
warnIfForeignEngine();
