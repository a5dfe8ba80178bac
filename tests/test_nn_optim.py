"""Optimisers and the step schedule, against hand-computed updates."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from vecq_ref.nn import SGD, Adam, StepLR


def test_sgd_momentum_weight_decay_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.5)
    opt.step(p, {"w": np.array([1.0, 1.0])})
    # g = 1 + 0.5·w = [1.5, 0]; v = g; w -= 0.1·v
    assert_allclose(p["w"], [0.85, -2.0])
    opt.step(p, {"w": np.array([0.0, 0.0])})
    # g = 0.5·w = [0.425, -1]; v = 0.9·[1.5, 0] + g
    assert_allclose(p["w"], [0.85 - 0.1 * (1.35 + 0.425), -2.0 + 0.1])


def test_plain_sgd_and_state_round_trip():
    p = {"w": np.array([1.0])}
    SGD(lr=0.5).step(p, {"w": np.array([2.0])})
    assert_allclose(p["w"], [0.0])
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step({"w": np.ones(2)}, {"w": np.ones(2)})
    other = SGD(lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert_allclose(other.state["w"]["velocity"], opt.state["w"]["velocity"])


def test_adam_first_steps_by_hand():
    p = {"w": np.array([0.0, 1.0])}
    opt = Adam(lr=0.01)
    opt.step(p, {"w": np.array([2.0, -3.0])})
    # After bias correction the first step is lr·sign(g) (up to eps).
    assert_allclose(p["w"], [-0.01, 1.01], rtol=1e-6)
    opt.step(p, {"w": np.array([2.0, -3.0])})
    assert_allclose(p["w"], [-0.02, 1.02], rtol=1e-6)
    restored = Adam(lr=0.01)
    restored.load_state_dict(opt.state_dict())
    assert int(restored.state["w"]["t"]) == 2


def test_adam_minimises_a_quadratic():
    p = {"w": np.array([3.0, -4.0])}
    opt = Adam(lr=0.1)
    for _ in range(500):
        opt.step(p, {"w": 2 * p["w"]})
    assert_allclose(p["w"], 0, atol=1e-2)


def test_step_schedule():
    s = StepLR(0.01, milestones=(15, 25), gamma=0.1)
    assert [s(e) for e in (0, 14, 15, 24, 25, 40)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4])


def test_float32_parameters_stay_float32():
    p = {"w": np.ones(3, np.float32)}
    SGD(lr=0.1, momentum=0.9, weight_decay=1e-4).step(p, {"w": np.ones(3, np.float32)})
    Adam().step(p, {"w": np.ones(3, np.float32)})
    assert p["w"].dtype == np.float32


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lr": 0}, "`lr` must be a positive"), ({"lr": 0.1, "momentum": -1}, "`momentum`"),
    ({"lr": 0.1, "weight_decay": -1}, "`weight_decay`")])
def test_sgd_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.9, 1e-4), (0.9, 0.0), (0.0, 5e-4),
                                                        (0.0, 0.0)])
def test_sgd_kernel_matches_numpy_twin(rng, dtype, momentum, weight_decay):
    """The fused Numba update against the NumPy statements: identical over several steps."""
    shapes = {"w": (7, 5), "b": (7,), "s": (1,)}
    params = {k: np.array(rng.standard_normal(s), dtype) for k, s in shapes.items()}
    twin_params = {k: v.copy() for k, v in params.items()}
    fast = SGD(lr=0.05, momentum=momentum, weight_decay=weight_decay)
    twin = SGD(lr=0.05, momentum=momentum, weight_decay=weight_decay, use_kernel=False)
    for _ in range(4):
        grads = {k: np.array(rng.standard_normal(s), dtype) for k, s in shapes.items()}
        fast.step(params, grads)
        twin.step(twin_params, grads)
        for k in params:
            assert params[k].dtype == dtype
            assert_array_equal(params[k], twin_params[k], err_msg=k)
    assert fast.state_dict().keys() == twin.state_dict().keys()
    for k, v in fast.state_dict().items():
        assert_array_equal(v, twin.state_dict()[k], err_msg=k)


def test_sgd_falls_back_for_mixed_dtypes_and_views():
    """Non-contiguous parameters, float64 gradients of float32 parameters, a NumPy-float
    learning rate: the NumPy statements, as before."""
    p = {"w": np.ones((4, 6), np.float32)[:, ::2], "v": np.ones(3, np.float32)}
    q = {k: v.copy() for k, v in p.items()}
    g = {"w": np.full((4, 3), 0.5), "v": np.full(3, 0.25)}
    fast, twin = SGD(lr=0.1, momentum=0.9), SGD(lr=0.1, momentum=0.9, use_kernel=False)
    fast.lr = twin.lr = np.float64(0.1)
    for _ in range(2):
        fast.step(p, g)
        twin.step(q, g)
    for k in p:
        assert p[k].dtype == np.float32
        assert_array_equal(p[k], q[k])


@pytest.mark.parametrize("use_kernel", [True, False])
def test_sgd_momentum_builds_up_on_a_scalar_parameter(use_kernel):
    # 0-d parameter, g = 1 every step, lr 0.1, μ 0.5: v = 1, 1.5, 1.75; w = 1 − 0.1·Σv.
    w = np.array(1.0)
    opt = SGD(lr=0.1, momentum=0.5, use_kernel=use_kernel)
    for _ in range(3):
        opt.step({"w": w}, {"w": np.array(1.0)})
    assert float(w) == pytest.approx(1.0 - 0.1 * (1.0 + 1.5 + 1.75), rel=1e-15)
    assert float(opt.state_dict()["velocity:w"]) == 1.75
    # With weight decay g + λw is a NumPy scalar for a 0-d w: same steps as a shape-(1,) w.
    w0, w1 = np.array(1.0), np.array([1.0])
    opt0, opt1 = (SGD(lr=0.1, momentum=0.5, weight_decay=0.1, use_kernel=use_kernel)
                  for _ in range(2))
    for _ in range(3):
        opt0.step({"w": w0}, {"w": np.array(1.0)})
        opt1.step({"w": w1}, {"w": np.array([1.0])})
    assert float(w0) == float(w1[0])
