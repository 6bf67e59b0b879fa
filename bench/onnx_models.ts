/**
 * One-node (or one-pattern) ONNX models of the four normalizations, built
 * with the `onnx-proto` encoder at bench time, so `npm run bench` can time
 * ONNX Runtime on the same data as this package. Nothing is written to a
 * tracked file: `npm run bench` keeps a copy of each model under
 * tmp/bench/onnx/ for inspection (e.g. with Netron).
 *
 * - LayerNormalization (opset 17): X [..., C], Scale [C], B [C], axis -1.
 * - InstanceNormalization (opset 6+): X NCHW, scale [C], B [C].
 * - RMSNormalization (opset 23): X [..., C], scale [C], axis -1; or, where
 *   the runtime lacks it, ONNX Runtime's SimplifiedLayerNormalization
 *   (ONNX domain, opset 1 in ORT) with the same inputs.
 * - GroupNorm as PyTorch exports it (torch.onnx, opset < 21): Reshape
 *   X NCHW to [N, G, -1] -> InstanceNormalization (scale 1, bias 0, [G])
 *   -> Reshape back to NCHW -> Mul gamma [C, 1, 1] -> Add beta [C, 1, 1].
 *   ONNX Runtime's fastest GroupNorm on CPU (opset 21's GroupNormalization
 *   is a function that expands into many small ops).
 */
import {onnx} from 'onnx-proto';

export type OnnxKind = 'ln'|'in'|'rms'|'rmsSimplified'|'gn';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function valueInfo(name: string, shape: number[]): onnx.IValueInfoProto {
  return {
    name,
    type: {tensorType: {elemType: FLOAT, shape: {dim: shape.map((d) => ({dimValue: d}))}}},
  };
}

function floatAttr(name: string, f: number): onnx.IAttributeProto {
  return {name, type: onnx.AttributeProto.AttributeType.FLOAT, f};
}

function intAttr(name: string, i: number): onnx.IAttributeProto {
  return {name, type: onnx.AttributeProto.AttributeType.INT, i};
}

function int64Init(name: string, values: number[]): onnx.ITensorProto {
  return {name, dims: [values.length], dataType: INT64, int64Data: values};
}

function floatInit(name: string, values: number[]): onnx.ITensorProto {
  return {name, dims: [values.length], dataType: FLOAT, floatData: values};
}

/**
 * The model for `kind` on input `shape` (NCHW for 'in' and 'gn', [..., C]
 * for the rest). Graph inputs: X, scale (gamma; [C, 1, 1] for 'gn') and,
 * except for the RMS kinds, B (beta; [C, 1, 1] for 'gn'). Output: Y.
 */
export function buildModel(kind: OnnxKind, shape: number[], epsilon: number, groups = 0): Uint8Array {
  const C = kind === 'in' || kind === 'gn' ? shape[1] : shape[shape.length - 1];
  const paramShape = kind === 'gn' ? [C, 1, 1] : [C];
  const inputs = [valueInfo('X', shape), valueInfo('scale', paramShape)];
  if (kind !== 'rms' && kind !== 'rmsSimplified') inputs.push(valueInfo('B', paramShape));
  const nodes: onnx.INodeProto[] = [];
  const inits: onnx.ITensorProto[] = [];
  let opset = 17;
  switch (kind) {
    case 'ln':
      nodes.push({opType: 'LayerNormalization', input: ['X', 'scale', 'B'], output: ['Y'],
        attribute: [intAttr('axis', -1), floatAttr('epsilon', epsilon)]});
      break;
    case 'in':
      nodes.push({opType: 'InstanceNormalization', input: ['X', 'scale', 'B'], output: ['Y'],
        attribute: [floatAttr('epsilon', epsilon)]});
      break;
    case 'rms':
      opset = 23;
      nodes.push({opType: 'RMSNormalization', input: ['X', 'scale'], output: ['Y'],
        attribute: [intAttr('axis', -1), floatAttr('epsilon', epsilon)]});
      break;
    case 'rmsSimplified':
      nodes.push({opType: 'SimplifiedLayerNormalization', input: ['X', 'scale'], output: ['Y'],
        attribute: [intAttr('axis', -1), floatAttr('epsilon', epsilon)]});
      break;
    case 'gn': {
      if (!(groups > 0) || C % groups !== 0) throw new Error(`buildModel: groups ${groups} must divide C=${C}`);
      inits.push(int64Init('grouped_shape', [shape[0], groups, -1]), int64Init('full_shape', shape),
          floatInit('ones', new Array<number>(groups).fill(1)), floatInit('zeros', new Array<number>(groups).fill(0)));
      nodes.push(
          {opType: 'Reshape', input: ['X', 'grouped_shape'], output: ['xg']},
          {opType: 'InstanceNormalization', input: ['xg', 'ones', 'zeros'], output: ['ng'],
            attribute: [floatAttr('epsilon', epsilon)]},
          {opType: 'Reshape', input: ['ng', 'full_shape'], output: ['n']},
          {opType: 'Mul', input: ['n', 'scale'], output: ['ns']},
          {opType: 'Add', input: ['ns', 'B'], output: ['Y']});
      break;
    }
  }
  const model: onnx.IModelProto = {
    irVersion: opset >= 23 ? 11 : 8,
    producerName: 'tfjs-normalization bench',
    opsetImport: [{domain: '', version: opset}],
    graph: {
      name: `${kind}_${shape.join('x')}`,
      node: nodes.map((n, i) => ({name: `n${i}`, ...n})),
      input: inputs,
      output: [valueInfo('Y', shape)],
      initializer: inits,
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
