import pytest
import torch

from ntcourse import data, models, train
from ntcourse.dynamics import DivergenceError

F64 = torch.float64


def setup_problem():
    ds = data.teacher_student(64, 3, noise=0.1, generator=torch.Generator().manual_seed(0), dtype=F64)
    build = lambda: models.mlp([3, 8, 1]).double()
    params, buffers, _ = models.ensemble(build, 3, generator_seed=1)
    return ds, build, params, buffers


def mse(out, target):
    return 0.5 * ((out - target) ** 2).mean()


def test_vmapped_ensemble_gd_equals_separately_trained_models():
    ds, build, params, buffers = setup_problem()
    trained, hist = train.train_ensemble(build(), params, mse, ds.x, ds.y, 0.1, 25, buffers=buffers,
                                         callbacks={"w0": lambda p: p["0.weight"][:, 0, 0]}, every=5)
    torch.manual_seed(1)
    separate = [build() for _ in range(3)]
    for i, net in enumerate(separate):
        for _ in range(25):  # plain GD, one model at a time (the test may loop)
            net.zero_grad()
            mse(net(ds.x), ds.y).backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= 0.1 * p.grad
        for name, p in net.named_parameters():
            torch.testing.assert_close(trained[name][i], p.detach(), rtol=1e-10, atol=1e-12)
    assert hist.steps.tolist() == [0, 5, 10, 15, 20, 25]
    assert hist["w0"].shape == (6, 3)


def test_minibatch_sgd_lowers_the_loss_and_weight_decay_shrinks():
    ds, build, params, buffers = setup_problem()
    net = build()
    loss_of = lambda p: torch.stack([mse(torch.func.functional_call(net, {k: v[i] for k, v in p.items()}, (ds.x,)), ds.y)
                                     for i in range(3)])
    before = loss_of(params)
    trained, _ = train.train_ensemble(net, params, mse, ds.x, ds.y, 0.1, 300, batch_size=8, buffers=buffers,
                                      generator=torch.Generator().manual_seed(0))
    assert (loss_of(trained) < before).all()
    decayed, _ = train.train_ensemble(net, params, lambda o, t: 0 * o.sum(), ds.x, ds.y, 0.1, 10, weight_decay=0.5,
                                      buffers=buffers)
    for k in params:  # with a zero loss, weight decay alone gives (1 - lr * gamma)^t
        torch.testing.assert_close(decayed[k], params[k] * 0.95**10)


def test_divergence_and_bad_inputs():
    ds, build, params, buffers = setup_problem()
    with pytest.raises(DivergenceError, match=r"training diverged at step \d+ \(lr=1e\+06\)"):
        train.train_ensemble(build(), params, mse, ds.x, ds.y, 1e6, 50, buffers=buffers)
    with pytest.raises(ValueError, match="x has 64 samples but y has 63"):
        train.train_ensemble(build(), params, mse, ds.x, ds.y[:63], 0.1, 5, buffers=buffers)
    with pytest.raises(ValueError, match=r"lr \(the learning rate\) must be >= 0"):
        train.train_ensemble(build(), params, mse, ds.x, ds.y, -0.1, 5, buffers=buffers)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        train.train_ensemble(build(), params, mse, ds.x, ds.y, 0.1, 5, batch_size=0, buffers=buffers)


def test_single_model_train_equals_a_torch_optim_loop_and_an_ensemble_of_one():
    ds, build, _, _ = setup_problem()
    torch.manual_seed(3)
    net = build()
    start = {k: v.detach().clone() for k, v in net.named_parameters()}
    trained, hist = train.train(net, mse, ds.x, ds.y, 0.05, 20, weight_decay=0.1,
                                callbacks={"loss": lambda p: mse(torch.func.functional_call(net, p, (ds.x,)), ds.y)})
    for k, v in net.named_parameters():          # the module itself is untouched
        assert torch.equal(v.detach(), start[k])
    ref = build()
    ref.load_state_dict(start)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(20):
        opt.zero_grad()
        mse(ref(ds.x), ds.y).backward()
        opt.step()
    for k, v in ref.named_parameters():
        torch.testing.assert_close(trained[k], v.detach(), rtol=1e-10, atol=1e-12)
    assert hist["loss"].shape == (21,) and hist["loss"][-1] < hist["loss"][0]
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train.train(lambda x: x, mse, ds.x, ds.y, 0.1, 1)
