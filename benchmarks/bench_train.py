"""One LeNet-5 training step (batch 64, float32) against PyTorch's CPU step on the same model.

Target (issue: training loop): our float step ≤ 1.0× PyTorch's median, measured side by side
in the same run. PyTorch is not a dependency: without ``torch`` its baseline is skipped and
only our timings are reported. Also times the 4-bit VecQ quantization-aware step (every
kernel quantized on each forward pass).

Run: ``python -m pytest benchmarks/bench_train.py --benchmark-only``.
"""

import time

import numpy as np
import pytest

from vecq_ref.nn import SGD, QuantSpec, SoftmaxCrossEntropy, attach, lenet5

BATCH = 64
ROUNDS = 30
GROUP = "lenet5-train-step-b64-float32"


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, BATCH)


def _our_step(bits=None):
    model = lenet5(seed=0)
    if bits is not None:
        attach(model, QuantSpec(bits=bits))
    crit = SoftmaxCrossEntropy()
    opt = SGD(lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step(x, y):
        loss = crit.forward(model.forward(x), y)
        model.backward(crit.backward())
        opt.step(model.params, model.grads)
        return loss

    return step


def _torch_step(torch, batch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                          nn.Linear(500, 10))
    assert sum(p.numel() for p in model.parameters()) == 431_080
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    crit = nn.CrossEntropyLoss()
    x, y = torch.from_numpy(batch[0]), torch.from_numpy(batch[1])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


@pytest.mark.benchmark(group=GROUP)
def test_baseline_torch_step(benchmark, batch):
    torch = pytest.importorskip("torch")
    step = _torch_step(torch, batch)
    for _ in range(3):
        step()
    benchmark(step)


def test_interleaved_ratio(batch, capsys):
    """Alternate our float step and PyTorch's, so a shared machine's load hits both alike."""
    torch = pytest.importorskip("torch")
    theirs, ours = _torch_step(torch, batch), _our_step()
    for _ in range(3):
        theirs()
        ours(*batch)
    t_theirs, t_ours = [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        theirs()
        t1 = time.perf_counter()
        ours(*batch)
        t2 = time.perf_counter()
        t_theirs.append(t1 - t0)
        t_ours.append(t2 - t1)
    ratio = np.median(t_ours) / np.median(t_theirs)
    with capsys.disabled():
        print(f"\ninterleaved LeNet-5 step, batch {BATCH}: vecq_ref "
              f"{np.median(t_ours) * 1e3:.1f} ms, torch {np.median(t_theirs) * 1e3:.1f} ms "
              f"(torch threads {torch.get_num_threads()}): ratio {ratio:.2f}× (target ≤ 1.0×)")


@pytest.mark.parametrize("bits", [None, 4], ids=["float", "vecq4"])
@pytest.mark.benchmark(group=GROUP)
def test_vecq_ref_step(benchmark, batch, bits):
    step = _our_step(bits)
    for _ in range(3):  # warm-up: compiles (or loads) the quantize kernels
        step(*batch)
    loss = benchmark(step, *batch)
    assert np.isfinite(loss)
