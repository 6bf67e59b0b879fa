/**
 * Functional normalization ops, each with an analytic gradient
 * (differentiable on every backend through `tf.customGrad`). Each takes a
 * float32 tensor and returns one of the same shape and rank type.
 *
 * @module ops
 */
export {batchNorm} from './batch_norm';
export type {BatchNormOptions} from './batch_norm';
export {groupNorm} from './group_norm';
export type {GroupNormOptions} from './group_norm';
export {instanceNorm} from './instance_norm';
export type {InstanceNormOptions} from './instance_norm';
export {layerNorm, rmsNorm} from './layer_norm';
export type {LayerNormOptions, RmsNormOptions} from './layer_norm';
export {unitNorm} from './unit_norm';
export type {UnitNormOptions} from './unit_norm';
export {localResponseNorm} from './local_response_norm';
export type {LocalResponseNormOptions, LrnConvention} from './local_response_norm';
export {weightStandardization} from './weight_standardization';
export type {WeightStandardizationOptions} from './weight_standardization';
export {filterResponseNorm} from './filter_response_norm';
export type {FilterResponseNormOptions} from './filter_response_norm';
