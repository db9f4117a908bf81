#!/usr/bin/env python3
"""Writes tests/data/bad_scenarios/*.json and its manifest.json.

Each case is one malformed scenario: a mutation of a valid base scenario (or raw text for syntax
errors) plus the JSON pointer and a regular expression that the problem moss reports for it must
carry. The files are committed; rerun this script after changing a case:

    python3 tests/reliability/make_bad_scenarios.py

The test (tests/reliability/bad_scenario_test.cpp) runs `moss validate` and `moss run` on every
file and checks exit code 2, the message (file + pointer + expectation), no crash, no summary.json,
and a bounded address space.
"""
import copy
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "bad_scenarios")

BASE = {
    "name": "bad",
    "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072, "tokens": 1e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 8,
                "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
    "parallelism": {"context": 8},
    "compression": {"method": "mos", "rank_k": 40, "rank_v": 100},
}

EXPLICIT_MODEL = {"layers": 8, "d_model": 2048, "heads": 8, "kv_heads": 8, "ffn_hidden": 8192,
                  "vocab": 128256, "tied_embeddings": True}

CASES = []  # (file stem, content (dict or raw str/bytes), pointer, message regex, why, options)
# options: "run_only" (the problem is found when the run loads data, not by `moss validate`),
# "known_bug" (why `moss validate` wrongly accepts it; the validate check is skipped until fixed).


def at(doc, dotted):
    """Parent object and last key of a dotted path (creating objects on the way)."""
    keys = dotted.split("/")
    cur = doc
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
    return cur, keys[-1]


def mutate(stem, pointer, regex, why, set_=None, delete=None, base=None, **options):
    """A case from BASE: `set_` maps slash paths ("cluster/nodes") to values; `delete` lists paths."""
    doc = copy.deepcopy(base if base is not None else BASE)
    for path, value in (set_ or {}).items():
        parent, key = at(doc, path)
        parent[key] = value
    for path in delete or []:
        parent, key = at(doc, path)
        del parent[key]
    CASES.append((stem, doc, pointer, regex, why, options))


def raw(stem, text, pointer, regex, why, **options):
    CASES.append((stem, text, pointer, regex, why, options))


def explicit(**fields):
    m = dict(EXPLICIT_MODEL)
    m.update(fields)
    return m


# --- syntax ---------------------------------------------------------------------------------------
raw("syntax-trailing-comma", '{"name": "x",}\n', "", r"invalid JSON.*line 1", "trailing comma")
raw("syntax-unclosed-brace", '{"name": "x", "model": {"preset": "mos-800m"}\n', "", r"invalid JSON", "truncated file")
raw("syntax-single-quotes", "{'name': 'x'}\n", "", r"invalid JSON", "single quotes")
raw("syntax-comment", '// a comment\n{"name": "x"}\n', "", r"invalid JSON", "comments are not JSON")
raw("syntax-empty-file", "", "", r"invalid JSON", "zero bytes")
raw("syntax-nan-literal", json.dumps(BASE)[:-1] + ', "loss": NaN}', "", r"invalid JSON", "NaN is not JSON")
raw("syntax-binary-garbage", b"\x00\xff\xfe\x93NUMPY\x01\x00garbage", "", r"invalid JSON", "binary file")
raw("syntax-invalid-utf8", b'{"name": "\xc3\x28"}', "", r"invalid JSON", "invalid UTF-8 in a string")
raw("syntax-top-level-array", "[1, 2, 3]\n", "", r"expected an object", "document is not an object")
raw("syntax-top-level-string", '"scenario"\n', "", r"expected an object", "document is a string")
raw("syntax-repeated-key", json.dumps(BASE).replace('"rank_k": 40', '"rank_k": 40, "rank_k": 8'),
    "/compression/rank_k", r"repeats a key of its object", "a key given twice (the parser would keep the last)")
DEEP = "[" * 100000 + "]" * 100000
raw("syntax-deep-nesting", '{"model": ' + DEEP + "}", "/model" + "/0" * 32, r"nested more than 32 levels",
    "100,000 nested arrays (stack depth)")
raw("syntax-deep-unknown-key", '{"modle": ' + DEEP + "}", "/modle" + "/0" * 32, r"nested more than 32 levels",
    "deep value under a misspelled key")
raw("syntax-deep-sweep", json.dumps(BASE)[:-1] + ', "sweep": {"name": [' + DEEP + "]}}",
    "/sweep/name" + "/0" * 31, r"nested more than 32 levels", "deep value in the sweep block (shape-checked only)")
raw("syntax-deep-object", '{"description": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    "/description" + "/a" * 32, r"nested more than 32 levels", "5,000 nested objects")

# --- wrong types ----------------------------------------------------------------------------------
mutate("type-name-number", "/name", r"expected a non-empty string", "name is a number", {"name": 5})
mutate("type-name-empty", "/name", r"expected a non-empty string", "empty name", {"name": ""})
mutate("type-model-string", "/model", r"expected an object", "model given as a preset string",
       {"model": "mos-800m"})
mutate("type-layers-string", "/model/layers", r"expected an integer", "layers as a string",
       {"model": explicit(layers="8")})
mutate("type-layers-fraction", "/model/layers", r"expected an integer", "layers 8.5",
       {"model": explicit(layers=8.5)})
mutate("type-nodes-bool", "/cluster/nodes", r"expected an integer", "nodes true", {"cluster/nodes": True})
mutate("type-seq-len-string", "/training/seq_len", r"expected an integer", "seq_len as a string",
       {"training/seq_len": "131072"})
mutate("type-bandwidth-number", "/cluster/network/bandwidth", r"expected a rate",
       "bandwidth without unit (a bare number)", {"cluster/network/bandwidth": 300})
mutate("type-overlap-string", "/training/weight_sync/overlap", r"expected true or false",
       "overlap \"yes\"", {"training/weight_sync": {"every_steps": 1, "overlap": "yes"}})
mutate("type-links-object", "/cluster/network/links", r"expected an array", "links is an object",
       {"cluster/network/links": {"from": 0, "to": 1}})
mutate("type-compression-array", "/compression", r"expected an object", "compression is an array",
       {"compression": ["mos", 40, 100]})
mutate("type-tokens-string", "/training/tokens", r"expected a number", "tokens \"1e9\"",
       {"training/tokens": "1e9"})
mutate("type-network-null", "/cluster/network", r"expected an object", "network null",
       {"cluster/network": None})

# --- unknown and misspelled keys --------------------------------------------------------------------
mutate("key-clustr", "/clustr", r"did you mean \"cluster\"", "misspelled top-level key",
       {"clustr": BASE["cluster"]}, delete=["cluster"])
mutate("key-bandwith", "/cluster/network/bandwith", r"did you mean \"bandwidth\"", "misspelled bandwidth",
       {"cluster/network/bandwith": "300Mbps"}, delete=["cluster/network/bandwidth"])
mutate("key-seqlen", "/training/seqlen", r"did you mean \"seq_len\"", "seqlen",
       {"training/seqlen": 131072}, delete=["training/seq_len"])
mutate("key-unknown-top", "/colour", r"unknown key \"colour\"", "unknown top-level key", {"colour": "blue"})
mutate("key-rank-on-none", "/compression/rank_k", r"unknown key \"rank_k\"", "rank_k with method none",
       {"compression": {"method": "none", "rank_k": 4}})
mutate("key-link-bw", "/cluster/network/links/0/bw", r"unknown key \"bw\"", "unknown key in a link",
       {"cluster/network/links": [{"from": 0, "to": 1, "bw": "1Gbps"}]})
mutate("key-missing-cluster", "/cluster", r"missing", "no cluster section", delete=["cluster"])
mutate("key-missing-seq-len", "/training/seq_len", r"missing", "no seq_len", delete=["training/seq_len"])
mutate("choice-preset-case", "/model/preset", r"did you mean \"llama3-8b\"", "preset in the wrong case",
       {"model": {"preset": "Llama3-8B"}})
mutate("choice-gpu-unknown", "/cluster/gpu", r"expected one of", "GPU not in the catalog",
       {"cluster/gpu": "TPUv5"})
mutate("choice-topology-tree", "/cluster/network/topology", r"expected one of", "topology tree",
       {"cluster/network/topology": "tree"})
mutate("choice-cp-all-gather", "/parallelism/cp_algorithm", r"did you mean \"allgather\"", "all_gather",
       {"parallelism/cp_algorithm": "all_gather"})
mutate("choice-method-unknown", "/compression/method", r"expected one of", "method svd",
       {"compression": {"method": "svd"}})
mutate("choice-backend-ns-3", "/simulation/backend", r"did you mean \"ns3\"", "backend ns-3",
       {"simulation": {"backend": "ns-3"}})

# --- units ------------------------------------------------------------------------------------------
mutate("unit-300M", "/cluster/network/bandwidth", r"expected a rate", "300M has no unit",
       {"cluster/network/bandwidth": "300M"})
mutate("unit-parsecs", "/cluster/network/latency", r"expected a duration", "5 parsecs",
       {"cluster/network/latency": "5 parsecs"})
mutate("unit-lowercase-mbps", "/cluster/network/bandwidth", r"expected a rate", "mbps (milli-bits?)",
       {"cluster/network/bandwidth": "300 mbps"})
mutate("unit-negative-rate", "/cluster/network/bandwidth", r"expected a value between",
       "-300Mbps", {"cluster/network/bandwidth": "-300Mbps"})
mutate("unit-zero-rate", "/cluster/network/bandwidth", r"expected a value between", "0Gbps",
       {"cluster/network/bandwidth": "0Gbps"})
mutate("unit-negative-latency", "/cluster/network/latency", r"expected a value between", "-1ms",
       {"cluster/network/latency": "-1ms"})
mutate("unit-overflow-latency", "/cluster/network/latency", r"expected a duration", "1e400s overflows",
       {"cluster/network/latency": "1e400s"})
mutate("unit-nan-rate", "/cluster/network/bandwidth", r"expected a rate", "NaNGbps",
       {"cluster/network/bandwidth": "NaNGbps"})
mutate("unit-huge-rate", "/cluster/network/bandwidth", r"expected a value between", "1e20Gbps",
       {"cluster/network/bandwidth": "1e20Gbps"})
mutate("unit-socket-buffer-words", "/cluster/network/socket_buffer", r"expected a size", "socket_buffer lots",
       {"cluster/network/socket_buffer": "lots"})
mutate("unit-empty-latency", "/cluster/network/latency", r"expected a duration", "empty latency",
       {"cluster/network/latency": ""})
mutate("unit-link-bandwidth-bytes-typo", "/cluster/network/links/0/bandwidth", r"expected a rate",
       "10 GB (a size, not a rate) on a link",
       {"cluster/network/links": [{"from": 0, "to": 1, "bandwidth": "10GB"}]})

# --- zero, negative, out of range, non-finite ---------------------------------------------------------
mutate("value-nodes-zero", "/cluster/nodes", r"expected an integer in \[1,", "nodes 0", {"cluster/nodes": 0})
mutate("value-nodes-negative", "/cluster/nodes", r"expected an integer in \[1,", "nodes -8",
       {"cluster/nodes": -8})
mutate("value-seq-len-zero", "/training/seq_len", r"expected an integer", "seq_len 0", {"training/seq_len": 0})
mutate("value-tokens-zero", "/training/tokens", r"expected a number in \[1,", "tokens 0",
       {"training/tokens": 0})
mutate("value-tokens-below-one", "/training/tokens", r"expected a number in \[1,", "tokens 5e-324 (not one token)",
       {"training/tokens": 5e-324})
mutate("value-tokens-negative", "/training/tokens", r"expected a number", "tokens -1e9",
       {"training/tokens": -1e9})
raw("value-tokens-infinite", json.dumps(BASE).replace('"tokens": 1000000000.0', '"tokens": 1e999'),
    "", r"invalid JSON: number overflow", "1e999 does not fit a double")
mutate("value-loss-above-half", "/cluster/network/loss", r"expected a number in \[0, 0.5\]", "loss 1.5",
       {"cluster/network/loss": 1.5})
mutate("value-mtu-tiny", "/cluster/network/mtu", r"expected an integer in \[576, 65535\]", "mtu 100",
       {"cluster/network/mtu": 100})
mutate("value-sequences-zero", "/training/sequences_per_step", r"expected an integer", "0 sequences",
       {"training/sequences_per_step": 0})
mutate("value-every-steps-zero", "/training/weight_sync/every_steps", r"expected an integer", "sync every 0",
       {"training/weight_sync": {"every_steps": 0}})
mutate("value-rank-zero", "/compression/rank_k", r"expected an integer in \[1,", "rank_k 0",
       {"compression/rank_k": 0})
mutate("value-topk-fraction-zero", "/compression/fraction", r"expected a number in \(0, 1\]", "fraction 0",
       {"compression": {"method": "topk", "fraction": 0}})
mutate("value-topk-fraction-above-one", "/compression/fraction", r"expected a number", "fraction 1.5",
       {"compression": {"method": "topk", "fraction": 1.5}})
mutate("value-quant-bits-3", "/compression/bits", r"expected 4 or 8", "bits 3",
       {"compression": {"method": "quant", "bits": 3}})
mutate("value-efficiency-zero", "/convergence/efficiency/compression/value", r"expected a number in \(0,",
       "efficiency 0", {"convergence": {"efficiency": {"compression": {"source": "assumed", "value": 0}}}})
mutate("value-target-loss-unreachable", "/training/target_loss", r"unreachable", "loss below the law's floor",
       {"training/target_loss": 0.5}, delete=["training/tokens"])
mutate("value-tokens-and-target", "/training/target_loss", r"not both", "tokens and target_loss",
       {"training/target_loss": 3.0})
mutate("value-zero-stage-4", "/parallelism/zero_stage", r"expected an integer in \[0, 3\]", "zero_stage 4",
       {"parallelism/zero_stage": 4})
mutate("value-seed-negative", "/simulation/seed", r"expected an integer", "seed -1",
       {"simulation": {"seed": -1}})

# --- consistency between fields -----------------------------------------------------------------------
mutate("consistency-context-times-data", "/parallelism/context", r"must equal nodes x gpus_per_node",
       "nodes 8 but context 4 x data 1", {"parallelism/context": 4})
mutate("consistency-seq-len-not-multiple", "/training/seq_len", r"must be a multiple of 16",
       "131071 tokens over 2 x 8 zigzag pieces", {"training/seq_len": 131071})
mutate("consistency-sequences-vs-data", "/training/sequences_per_step", r"multiple of data = 2",
       "3 sequences over 2 replicas",
       {"parallelism": {"context": 4, "data": 2}, "training/sequences_per_step": 3})
mutate("consistency-rank-above-width", "/compression/rank_k", r"exceeds the width of K",
       "rank_k 4096 > kv width 2048", {"compression/rank_k": 4096})
mutate("consistency-heads-divide-d-model", "/model/heads", r"must divide d_model",
       "7 heads of d_model 2048", {"model": explicit(heads=7, kv_heads=7)})
mutate("consistency-kv-heads", "/model/kv_heads", r"must divide heads", "3 kv heads of 8",
       {"model": explicit(kv_heads=3)})
mutate("consistency-memory", "/cluster/gpu", r"the step needs .* per GPU", "llama3-70b on 8 L4s",
       {"model": {"preset": "llama3-70b"}, "cluster/gpu": "L4", "compression": {"method": "none"}})
mutate("topology-custom-unreachable", "/cluster/network/links", r"unreachable",
       "custom topology: two islands 0-1-2-3 and 4-5-6-7",
       {"cluster/network/topology": "custom",
        "cluster/network/links": [{"from": 0, "to": 1}, {"from": 1, "to": 2}, {"from": 2, "to": 3},
                                  {"from": 4, "to": 5}, {"from": 5, "to": 6}, {"from": 6, "to": 7}]})
mutate("topology-custom-no-links", "/cluster/network/links", r"missing", "custom topology without links",
       {"cluster/network/topology": "custom"})
mutate("topology-ring-non-neighbours", "/cluster/network/links/0", r"no link between 0 and 4",
       "ring override between nodes 0 and 4", {"cluster/network/links": [{"from": 0, "to": 4}]})
mutate("topology-endpoint-out-of-range", "/cluster/network/links/0/to", r"expected a node index in \[0, 7\]",
       "link to node 99 of 8", {"cluster/network/links": [{"from": 0, "to": 99}]})
mutate("topology-self-loop", "/cluster/network/links/0/to", r"two different endpoints", "link 2 -> 2",
       {"cluster/network/topology": "full_mesh", "cluster/network/links": [{"from": 2, "to": 2}]})
mutate("topology-duplicate-override", "/cluster/network/links/1", r"overrides the same link",
       "two overrides of link 0-1",
       {"cluster/network/links": [{"from": 0, "to": 1, "bandwidth": "1Gbps"},
                                  {"from": 1, "to": 0, "bandwidth": "2Gbps"}]})
mutate("topology-star-node-to-node", "/cluster/network/links/0", r"no link between",
       "star: links go to the switch", {"cluster/network/topology": "star",
                                        "cluster/network/links": [{"from": 0, "to": 1}]})
mutate("convergence-missing-calibration", "/convergence/efficiency/compression/file",
       r"no such calibration file", "measured efficiency from a file that does not exist",
       {"convergence": {"efficiency": {"compression": {"source": "measured", "file": "nope.json"}}}})
# Calibration files that exist but cannot serve the scenario (fixtures in tests/data/bad_calibrations/):
# `moss validate` reads them as the run will, and names the scenario's field with the file's own problem.
def measured(fixture):
    return {"convergence": {"efficiency": {"compression": {"source": "measured",
                                                           "file": "../bad_calibrations/" + fixture}}}}


CALIBRATION_FILE = "/convergence/efficiency/compression/file"
mutate("calibration-empty", CALIBRATION_FILE, r"calibration .*empty\.json: invalid JSON",
       "an empty calibration file", measured("empty.json"))
mutate("calibration-wrong-format", CALIBRATION_FILE,
       r"calibration .*wrong-format\.json: /format: expected \"moss-calibration/1\"",
       "a JSON file that is not a calibration file", measured("wrong-format.json"))
mutate("calibration-no-matching-run", CALIBRATION_FILE,
       r"calibration .*topk-only\.json: /runs: no run matches the scenario",
       "a calibration file with runs of another method only", measured("topk-only.json"))
mutate("calibration-no-common-loss", CALIBRATION_FILE,
       r"calibration .*disjoint\.json: the baseline and the compared run reach no common loss range",
       "a run whose loss curve never meets the baseline's", measured("disjoint.json"))
mutate("sweep-empty-axis", "/sweep/cluster.network.bandwidth", r"at least one value", "empty sweep axis",
       {"sweep": {"cluster.network.bandwidth": []}})
mutate("sweep-not-object", "/sweep", r"expected an object", "sweep is a list", {"sweep": ["1Gbps"]})

# --- absurd sizes (must be refused before anything is sized by them) ------------------------------------
mutate("huge-seq-len-1e15", "/training/seq_len", r"expected an integer in \[1, 4294967296\]",
       "1e15 tokens per sequence", {"training/seq_len": 10**15})
mutate("huge-nodes-1e9", "/cluster/nodes", r"expected an integer in \[1, 100000\]", "1e9 nodes",
       {"cluster/nodes": 10**9, "parallelism/context": 10**9})
mutate("huge-gpus-6.4M", "/cluster/nodes", r"moss simulates at most", "100000 nodes x 64 GPUs",
       {"cluster/nodes": 100000, "cluster/gpus_per_node": 64}, delete=["parallelism"])
mutate("huge-full-mesh", "/cluster/network/topology", r"full mesh of 2048 nodes is too large",
       "full mesh of 2048 nodes (2M links)",
       {"cluster/nodes": 2048, "cluster/network/topology": "full_mesh", "parallelism/context": 2048})
mutate("huge-vocab", "/model/vocab", r"expected an integer", "1e12 vocabulary",
       {"model": explicit(vocab=10**12)})
mutate("huge-layers", "/model/layers", r"expected an integer in \[1, 1000\]", "a million layers",
       {"model": explicit(layers=10**6)})
mutate("huge-d-model", "/model/d_model", r"expected an integer", "d_model 2^30",
       {"model": explicit(d_model=2**30)})
mutate("huge-sequences", "/training/sequences_per_step", r"expected an integer", "1e12 sequences per step",
       {"training/sequences_per_step": 10**12})
mutate("huge-tokens", "/training/tokens", r"expected a number in \[1, 1e\+16\]", "1e30 training tokens",
       {"training/tokens": 1e30})
mutate("huge-integer-2-64", "/cluster/nodes", r"expected an integer", "18446744073709551616 nodes",
       {"cluster/nodes": 2**64})
mutate("huge-rank", "/compression/rank_v", r"expected an integer", "rank 2^40",
       {"compression/rank_v": 2**40})


# --- activation files named by a scenario (fixtures in tests/data/bad_activations/) --------------------
MOS = {"method": "mos", "rank_k": 40, "rank_v": 100}
mutate("activations-missing-file", "/compression/activations", r"existing .npy/.h5 file", "no such activation file",
       {"compression": dict(MOS, activations="no-such-file.npy")})
# `moss validate` loads the file as the run will (a scenario that validates must run).
mutate("activations-nan", "/compression/activations", r"NaN at K layer 0, token 3, feature 5", "K/V pair with a NaN",
       {"compression": dict(MOS, activations="../bad_activations/nan-pair.npy")})
mutate("activations-truncated", "/compression/activations", r"truncated", "K/V pair cut short",
       {"compression": dict(MOS, activations="../bad_activations/truncated-pair.npy")})
mutate("activations-huge-value", "/compression/activations", r"magnitude at most 1e15", "K/V pair with a value of 1e16",
       {"compression": dict(MOS, activations="../bad_activations/huge-value-pair.npy")})
mutate("activations-synthetic-empty", "/compression/activations", r"expected a spec after it", "synthetic: with no spec",
       {"compression": dict(MOS, activations="synthetic:")})
mutate("rank-above-warmup", "/compression/rank_k", r"exceeds warmup_tokens \(16\)", "a basis of rank 40 fitted on 16 tokens",
       {"compression": dict(MOS, warmup_tokens=16)})
mutate("activations-one-tensor", "/compression/activations", r"expected K and V", "one tensor where a K/V pair is needed",
       {"compression": dict(MOS, activations="../bad_activations/one-tensor.npy")})
mutate("activations-wrong-width", "/compression/activations", r"width 8; the model's K/V width is 2048",
       "a K/V pair 8 wide for a model whose K/V are 2048 wide",
       {"compression": dict(MOS, activations="../bad_activations/narrow-pair.npy")})
mutate("activations-synthetic-unknown-key", "/compression/activations", r"unknown key \"bogus\"", "bad synthetic spec",
       {"compression": dict(MOS, activations="synthetic:bogus=1")})
mutate("activations-synthetic-dim-mismatch", "/compression/activations", r"dim=128 differs from this model's K/V width 2048",
       "a synthetic spec whose width the scenario would silently replace",
       {"compression": dict(MOS, activations="synthetic:llama,dim=128")})
mutate("activations-synthetic-tokens", "/compression/activations", r"tokens= is not used here",
       "a synthetic token count the scenario would silently replace",
       {"compression": dict(MOS, activations="synthetic:llama,tokens=100")})
mutate("mos-full-rank-sends-more", "/compression/rank_k", r"would send 8192.00048828125 bytes per token \(coefficients and angles\), more than the 8192 of uncompressed",
       "mos at the full width sends its angles on top of every value",
       {"compression": dict(MOS, rank_k=2048, rank_v=2048)})
mutate("mos-rotations-too-many", "/compression/rotations", r"16", "more rotation generators than the kernels support",
       {"compression": dict(MOS, rotations=20)})
mutate("mos-k-routing-unknown", "/compression/routing", r"exhaustive.*sketch", "mos-k routing that does not exist",
       {"compression": {"method": "mos-k", "rank_k": 40, "rank_v": 100, "routing": "greedy"}})
mutate("routing-on-pca", "/compression/routing", r"unknown key", "routing is a mos-k parameter",
       {"compression": {"method": "pca", "rank_k": 40, "rank_v": 100, "routing": "sketch"}})
mutate("warmup-tokens-too-many", "/compression/warmup_tokens", r"16.*65536", "a warm-up of a million tokens",
       {"compression": dict(MOS, warmup_tokens=10**6)})
mutate("warmup-tokens-on-none", "/compression/warmup_tokens", r"unknown key", "nothing is measured without compression",
       {"compression": {"method": "none", "warmup_tokens": 4096}})
mutate("activations-synthetic-bad-value", "/compression/activations", r"noise", "synthetic spec with a negative noise",
       {"compression": dict(MOS, activations="synthetic:noise=-1")})
mutate("datasets-on-synthetic", "/compression/datasets", r"not an .h5/.hdf5 file",
       "HDF5 datasets chosen for synthetic activations",
       {"compression": dict(MOS, activations="synthetic:llama", datasets={"k": "cache/k", "v": "cache/v"})})
mutate("datasets-on-npy", "/compression/datasets", r"not an .h5/.hdf5 file", "HDF5 datasets chosen for a .npy file",
       {"compression": dict(MOS, activations="../bad_activations/narrow-pair.npy", datasets={"k": "k", "v": "v"})})
mutate("datasets-without-v", "/compression/datasets/v", r"required", "a K/V pair of datasets without its V",
       {"compression": dict(MOS, activations="../bad_activations/libhdf5-oom.h5", datasets={"k": "k"})})
mutate("datasets-root-only", "/compression/datasets/k", r"expected the path of a dataset",
       "\"/\" names the file's root group, not a dataset",
       {"compression": dict(MOS, activations="../bad_activations/libhdf5-oom.h5", datasets={"k": "/", "v": "v"})})
mutate("datasets-dot-only", "/compression/datasets/v", r"expected the path of a dataset",
       "\"./.\" names the file's root group too, as the loader reads it",
       {"compression": dict(MOS, activations="../bad_activations/libhdf5-oom.h5", datasets={"k": "k", "v": "./."})})


def write_activation_fixtures():
    """Small malformed .npy files a scenario can name (tests/data/bad_activations/)."""
    import math
    import struct
    out = os.path.join(ROOT, "tests", "data", "bad_activations")
    os.makedirs(out, exist_ok=True)

    def npy(descr, shape, payload):
        h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
        while (10 + len(h) + 1) % 64:
            h += " "
        h += "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload

    vals = [math.sin(0.3 * i) for i in range(128)]
    with_nan = list(vals)
    with_nan[3 * 8 + 5] = float("nan")
    huge = list(vals)
    huge[64 + 2 * 8 + 1] = 1e16
    files = {
        "nan-pair.npy": npy("<f4", "(2, 8, 8)", struct.pack("<128f", *with_nan)),
        "truncated-pair.npy": npy("<f4", "(2, 8, 8)", struct.pack("<100f", *vals[:100])),
        "one-tensor.npy": npy("<f4", "(16, 8)", struct.pack("<128f", *vals)),
        "huge-value-pair.npy": npy("<f4", "(2, 8, 8)", struct.pack("<128f", *huge)),
        "narrow-pair.npy": npy("<f4", "(2, 8, 8)", struct.pack("<128f", *vals)),
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def write_calibration_fixtures():
    """Calibration files a scenario can name that parse or exist but cannot serve it."""
    out = os.path.join(ROOT, "tests", "data", "bad_calibrations")
    os.makedirs(out, exist_ok=True)
    baseline = {"tokens": [1e9, 1e10], "loss": [4.0, 3.0]}
    files = {
        "empty.json": "",
        "wrong-format.json": {"format": "loss-curves/2", "baseline": baseline,
                              "runs": [{"match": {"method": "mos"}, "tokens": [1e9, 1e10], "loss": [4.0, 3.2]}]},
        "topk-only.json": {"format": "moss-calibration/1", "baseline": baseline,
                           "runs": [{"match": {"method": "topk"}, "tokens": [1e9, 1e10], "loss": [4.0, 3.5]}]},
        "disjoint.json": {"format": "moss-calibration/1", "baseline": baseline,
                          "runs": [{"match": {"method": "mos"}, "tokens": [1e9, 1e10], "loss": [6.0, 5.0]}]},
    }
    for name, content in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content, indent=1) + "\n")


def main():
    write_activation_fixtures()
    write_calibration_fixtures()
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    stems = set()
    for stem, content, pointer, regex, why, options in CASES:
        assert stem not in stems, stem
        stems.add(stem)
        name = stem + ".json"
        path = os.path.join(OUT, name)
        if isinstance(content, dict):
            data = (json.dumps(content, indent=2) + "\n").encode()
        elif isinstance(content, str):
            data = content.encode()
        else:
            data = content
        with open(path, "wb") as f:
            f.write(data)
        entry = {"file": name, "pointer": pointer, "message": regex, "why": why}
        entry.update(options)
        manifest.append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"about": "Malformed scenarios: each must make `moss validate` and `moss run` exit 2 "
                            "with a message naming the file, this JSON pointer and matching this regex. "
                            "Generated by tests/reliability/make_bad_scenarios.py.",
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    print(f"{len(manifest)} cases written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
