"""moss calibrate: measure the statistical efficiency (eta) of K/V compression by training small models.

Modules: data (corpus, batches, unigram entropy), codecs (the wire formats of kernels/, as differentiable
torch modules), model (LLaMA-style decoder with context parallelism emulated in one process), train (one
run), eta (the convergence definition of sim/converge), output (calibration file, plot, K/V dump),
cli (the `moss-calibrate` entry point).
"""
