export { decodeImage, resizeRgb, writeChw, type RgbImage, type Normalisation } from './image.js';
export { decodeDb, dbInputSize, readingOrder, type DbOptions, type ScoredBox } from './dbText.js';
export { decodeCtc, loadDictionary, type TextGuess } from './ctc.js';
export { textLineBatches, fixedSizeCropBatches, type CropBatch, type CropSpec } from './textCrops.js';
export { characterAccuracy } from './textAccuracy.js';
export { computeFit, fitImage, unfitBox, type Fit } from './letterbox.js';
export { decodeSsd, decodeYolo, nms, iou, type Detection, type DetectOptions } from './detections.js';
export { softmax, topK } from './classify.js';
export { drawBoxes, type DrawnBox } from './draw.js';
