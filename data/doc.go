// Package data loads the memes the workbench trains on: labels and
// transcriptions, CLIP image and text embeddings, and their splits.
//
// # Datasets
//
// Two datasets are known by name (configs.DataConfig.Dataset):
//
//   - "synthetic-mami" (the default) is generated in memory by [Synthetic]:
//     10,000 training and 1,000 official test memes with 512-d embeddings,
//     built to behave like CLIP features of the MAMI memes. Its structure and
//     calibration are described in docs/format/synthetic.md.
//   - "mami" reads the SemEval-2022 Task 5 release from a folder
//     (training.csv, Test.csv, test_labels.txt; see [ReadMAMI] and
//     [ReadTestLabels]) and a feature file of precomputed embeddings
//     (safetensors or NumPy; see [ReadFeatures] and docs/format/features.md).
//
// # Splits
//
// [Load] returns [Splits]: the labelled training memes split by
// [StratifiedSplit] into train, validation and test parts reproducibly from a
// seed, plus the official test set. [Batches] gives the shuffled minibatch
// indices of one epoch.
//
// # Embeddings
//
// Every [Set] holds L2-normalised image and text embeddings, row-major, one
// row per meme in the order of Set.Memes. Feature files whose rows are not
// unit length are normalised on load and the fact is reported in
// [Features].Normalized.
package data
