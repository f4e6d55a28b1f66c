export { decodeImage, resizeRgb, writeChw, rawInput, type RgbImage, type Normalisation } from './image.js';
export { decodeDb, dbInputSize, readingOrder, type DbOptions, type ScoredBox } from './dbText.js';
export { decodeCtc, loadDictionary, type TextGuess } from './ctc.js';
export { textLineBatches, type CropBatch, type CropSpec } from './textCrops.js';
export { characterAccuracy, editDistance } from './textAccuracy.js';
