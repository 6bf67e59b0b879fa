/**
 * Model IO: a file-system handler for Node, and a strict, leak-free loader.
 *
 * @module io
 */
export {fileSystem} from './file_system';
export {loadLayersModel} from './load';
export {fromKeras3, isKeras3Topology, translateKeras3Topology} from './keras3';
