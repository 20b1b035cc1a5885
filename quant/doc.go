// Package quant turns fp32 models into smaller ones and measures what that
// costs: calibration (importance matrices from activations, synthetic
// calibration text the model writes itself), quantizers (k-bit groups,
// non-linear codebooks, scale search, GPTQ-style error feedback, per-tensor
// mixed precision), pruning, and evaluation (perplexity, KL divergence
// against a base model, top-1 agreement) with llama.cpp's protocols.
//
// It imports core and models and the standard library. Unlike core it may
// start goroutines: evaluation runs one core.State per worker over
// independent chunks, which scales with cores without touching the kernels.
// Results never depend on the number of workers: per-token figures land in
// slots indexed by position and are summed in order afterwards.
package quant
