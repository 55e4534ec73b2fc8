// Package clip runs OpenAI's CLIP (the Hugging Face CLIPModel checkpoints:
// config.json, model.safetensors, vocab.json + merges.txt,
// preprocessor_config.json) in pure Go, to turn MAMI's meme images and
// transcriptions into embeddings once, without a Python environment.
//
// # Tokenizer
//
// [LoadTokenizer] reads vocab.json + merges.txt or CLIP's original
// bpe_simple_vocab_16e6.txt.gz. [Tokenizer.Tokenize] reproduces the reference
// tokenizer: ftfy-style text fixing (NFC, curly quotes, fullwidth forms,
// Latin ligatures, single-layer mojibake), HTML unescaping, whitespace
// collapsing, lowercasing, CLIP's pre-split regex and byte-level BPE.
//
// # Model
//
// [Load] reads a CLIPModel directory (sizes from config.json, F32/F16/BF16
// weights). [Model.EncodeText] and [Model.EncodeImages] return the projected
// embeddings before L2 normalisation; [Normalize] normalises them. The text
// tower stops at the end-of-text token: with the causal mask nothing after it
// changes the pooled output.
//
// # Images
//
// [DecodeImage] decodes JPEG, PNG, GIF and WebP and converts to RGB like
// PIL; [Preprocessor] resizes the shortest side with a bit-exact port of
// Pillow's antialiased bicubic, centre-crops with the reference's rounding
// and normalises.
//
// # Extraction
//
// [Extract] computes image and text features for many items on all cores,
// in batches, resumably (an append-only, checksummed record file in a work
// directory); [MAMIItems] lists a MAMI folder's memes for it and
// [LoadBundle] loads a checkpoint with its tokenizer and preprocessing.
package clip
