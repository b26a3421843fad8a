"""Writes chapters/01-sgd-thermal/lab.ipynb (outputs cleared). Edit here, rerun, commit both.

Keeping the notebook's source in one Python file makes reviews readable; the notebook is the
artefact readers open.
"""

import pathlib

import nbformat as nbf

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETUP = (ROOT / "authoring" / "setup_cell.py").read_text().strip()

cells = []


def md(text, **meta):
    cells.append(nbf.v4.new_markdown_cell(text.strip("\n"), metadata=meta))


def code(text, tags=(), **meta):
    if tags:
        meta["tags"] = list(tags)
    cells.append(nbf.v4.new_code_cell(text.strip("\n"), metadata=meta))


def figure(alt, caption, name):
    return {"mystnb": {"image": {"alt": alt}, "figure": {"caption": caption, "name": name}}}


md(r"""
(ch1-lab)=
# Lab: measuring the temperature of SGD

This lab tests three predictions of {doc}`theory` by simulation. Each section states the
prediction, runs the experiment on many independent replicas at once, prints prediction,
measurement and their ratio, and **asserts** agreement within a tolerance justified by the
number of samples. If an assertion fails, something is wrong with the derivation or the
code, not with the seed: every check holds for any seed (the test suite runs seeds 0–4).

| experiment | prediction | tolerance |
|---|---|---|
| 1. Independent valleys | thermal energy per valley $\frac{\eta\sigma^2}{2(2-\eta a)}$ for SGD, $\frac{\sqrt{2\pi}}{8}\eta\sigma$ for SignGD | 3 % (SGD), 5 % (SignGD) |
| 2. Correlated noise in 2-D | covariance from the discrete Lyapunov equation; thermal loss $\approx\frac\eta4\Tr C$ | 2 % / 5 % |
| 3. Linear regression | Yaida's fluctuation–dissipation relations FDR1 and FDR2 | 3 % |

The first cell is the same in every notebook of the course: in Colab it installs the
`ntcourse` package; everywhere it seeds the random generators, chooses the device and the
scale, and prints them. Set `NTCOURSE_SCALE=full` (before this cell) to run with ten times
more replicas on a GPU.
""")

code(SETUP)

code(r"""
import math

import matplotlib.pyplot as plt
import torch

device = rt.device
gen = nt.generator()  # one generator for the whole lab, seeded by nt.setup()
""")

# ----------------------------------------------------------------------------- E1
md(r"""
## Equipartition in independent valleys

**Prediction.** Take $D=20$ independent valleys $L(x)=\sum_i \frac{a_i}{2}x_i^2$ with
curvatures $a_i$ spread logarithmically over $[0.5, 10]$, and SGD with additive isotropic
gradient noise of variance $\sigma^2$ per coordinate (the batch size is absorbed in
$\sigma$): $x_{t+1}=(1-\eta a)x_t-\eta\xi_t$. The exact stationary variance of discrete-time
SGD ({prf:ref}`thm-ch1-1d-exact`, equation {eq}`eq-ch1-1d-variance`) gives a thermal energy per valley

$$
\Big\langle \tfrac{a}{2}x^2\Big\rangle=\frac{\eta\sigma^2}{2(2-\eta a)}
\;\xrightarrow{\ \eta a\to 0\ }\;\frac{\eta\sigma^2}{4},
$$

the same in every valley in the small-step limit, whatever its sharpness: **equipartition**.
At $\eta=0.05$ the sharpest valley has $\eta a=0.5$, where the exact value is a third larger
than the limit; the lab shows both.

**Tolerance.** Each replica's time average is one independent sample; with
$R$ replicas the standard error of the mean energy is about $0.5\,\%$ at quick scale (printed
below). The exact formula has no systematic error, so 3 % is six standard errors: a
correct implementation passes for any seed, and a factor such as $2-\eta a$ dropped from the
derivation fails by up to 33 %.
""")

code(r"""
n_valleys = 20
a = torch.logspace(math.log10(0.5), 1.0, n_valleys, device=device)   # curvatures a_i
valleys = nt.diagonal_quadratic(a)
lr, sigma = 0.05, 1.0
n_replicas = nt.by_scale(quick=2_000, full=20_000)
n_burn = 300                      # slowest valley relaxes as (1 - lr*a)^(2t): 15 e-folds
n_steps = n_burn + 2_000

energy = {"energy": lambda s: 0.5 * a * s.theta**2}   # a_i x_i^2 / 2 for every replica and valley
traj = nt.sgd(valleys, torch.zeros(n_replicas, n_valleys, device=device), lr, n_steps,
              noise=nt.isotropic_noise(sigma), generator=gen,
              observables=energy, every=10, record_from=n_burn)

per_replica = traj.time_average("energy")                 # (R, D): time average of each replica
measured = per_replica.mean(0).cpu()
sem = (per_replica.std(0) / math.sqrt(n_replicas)).cpu()
predicted = (lr * sigma**2 / (2 * (2 - lr * a))).cpu()      # exact discrete-time prediction
limit = lr * sigma**2 / 4                                   # small-step limit

rows = nt.compare_table([f"a = {ai:5.2f}" for ai in a.tolist()], predicted, measured, sem,
                        header="SGD: thermal energy per valley")
sgd_worst = max(r.rel_error for r in rows)
sgd_limit_worst = (measured / limit - 1).abs().max().item()
print(f"worst deviation from the exact formula: {100 * sgd_worst:.2f} %  "
      f"(largest relative standard error {100 * (sem / measured).max().item():.2f} %)")
print(f"worst deviation from the limit eta sigma^2/4: {100 * sgd_limit_worst:.1f} %")
assert sgd_worst < 0.03, f"SGD equipartition off by {100 * sgd_worst:.2f} % (> 3 %)"
assert sgd_limit_worst > 0.2, "the discrete-time correction 2/(2 - lr a) should be visible at lr a = 0.5"
""")

md(r"""
**SignGD.** SignGD moves every coordinate by exactly $\eta$ against the sign of its noisy
gradient. When the noise dominates the gradient, $|a x|\ll\sigma$, the mean step is
$-\eta\sqrt{2/\pi}\,a x/\sigma$ and its variance is $\eta^2$: an effective curvature
$a'=\sqrt{2/\pi}\,a/\sigma$ with unit-variance noise. The thermal energy per valley is then

$$
\Big\langle \tfrac{a}{2}x^2\Big\rangle\approx\frac{\sqrt{2\pi}}{8}\,\eta\sigma,
$$

again independent of $a$, but now linear in $\sigma$ (derived in {ref}`ch1-sec-signgd`). The approximation neglects terms of
relative order $\eta a/\sigma$ (here at most $0.05$: a bias of about 1–2 % in the sharpest
valleys, visible in the table), and the standard error is about $0.6\,\%$; the tolerance is 5 %.
""")

code(r"""
lr_sign = 0.005
n_replicas_sign = nt.by_scale(quick=4_000, full=40_000)
a_eff_min = math.sqrt(2 / math.pi) * a.min().item() / sigma
n_burn_sign = int(5 / (2 * lr_sign * a_eff_min))          # five relaxation times of the slowest valley
traj_sign = nt.signgd(valleys, torch.zeros(n_replicas_sign, n_valleys, device=device), lr_sign,
                      n_burn_sign + 5_000, noise=nt.isotropic_noise(sigma), generator=gen,
                      observables=energy, every=20, record_from=n_burn_sign)

per_replica_sign = traj_sign.time_average("energy")
measured_sign = per_replica_sign.mean(0).cpu()
sem_sign = (per_replica_sign.std(0) / math.sqrt(n_replicas_sign)).cpu()
predicted_sign = torch.full_like(measured_sign, math.sqrt(2 * math.pi) / 8 * lr_sign * sigma)

rows_sign = nt.compare_table([f"a = {ai:5.2f}" for ai in a.tolist()], predicted_sign, measured_sign,
                             sem_sign, header="SignGD: thermal energy per valley")
signgd_worst = max(r.rel_error for r in rows_sign)
print(f"worst deviation: {100 * signgd_worst:.2f} %")
assert signgd_worst < 0.05, f"SignGD equipartition off by {100 * signgd_worst:.2f} % (> 5 %)"
""")

code(r"""
fig, ax = plt.subplots()
ax.errorbar(a.cpu(), measured / limit, yerr=2 * sem / limit, fmt="o", label="SGD, measured (±2 s.e.)")
ax.plot(a.cpu(), predicted / limit, "-", label=r"SGD, exact: $\eta\sigma^2/(2(2-\eta a))$")
ax.errorbar(a.cpu(), measured_sign / predicted_sign, yerr=2 * sem_sign / predicted_sign, fmt="s",
            label="SignGD, measured / prediction")
ax.axhline(1.0, color="k", lw=1, ls="--", label="equipartition (small-step limit)")
ax.set_xscale("log")
ax.set_xlabel("valley curvature $a$ (loss / parameter$^2$)")
ax.set_ylabel("thermal energy / small-step prediction")
ax.set_title(f"SGD ($\\eta$={lr}) and SignGD ($\\eta$={lr_sign}), $\\sigma$={sigma}")
ax.legend(fontsize=9)
plt.show()
""", **figure(
    alt="Thermal energy per valley divided by the small-step prediction, against curvature on a log axis. "
        "SGD points rise from 1 to about 1.33 as the curvature grows and lie on the exact discrete-time curve; "
        "SignGD points stay at 1 within error bars.",
    caption="Equipartition: every valley holds the same thermal energy in the small-step limit (dashed). "
            "SGD's exact discrete-time value rises with $\\eta a$; SignGD's energy is independent of $a$.",
    name="fig-ch1-equipartition"))

code(r"""
nt.glue("e1_lr", lr)
nt.glue("e1_sigma", sigma)
nt.glue("e1_n_replicas", n_replicas)
nt.glue("e1_n_steps", n_steps)
nt.glue("e1_sgd_worst", 100 * sgd_worst)
nt.glue("e1_sgd_limit_worst", 100 * sgd_limit_worst)
nt.glue("e1_signgd_worst", 100 * signgd_worst);
""", tags=("remove-cell",))

md(r"""
**Measured.** Over the 20 valleys, SGD's thermal energy deviates from the exact formula by at
most {glue:text}`e1_sgd_worst:.2f` % ({glue:text}`e1_n_replicas` replicas,
{glue:text}`e1_n_steps` steps), while it deviates from the small-step limit by up to
{glue:text}`e1_sgd_limit_worst:.1f` %: the factor $2/(2-\eta a)$ is real. SignGD matches its
noise-dominated prediction to {glue:text}`e1_signgd_worst:.2f` %.
""")

# ----------------------------------------------------------------------------- E2
md(r"""
## Correlated noise: the Lyapunov equation

**Prediction.** On $L=\frac12\theta^\top A\theta$ with noise covariance $C$, the stationary
covariance of $\theta_{t+1}=(I-\eta A)\theta_t-\eta\xi_t$ solves the discrete Lyapunov
equation ({prf:ref}`thm-ch1-lyapunov`)

$$
\Sigma=(I-\eta A)\Sigma(I-\eta A)^\top+\eta^2C ,
$$

whose small-step limit is $A\Sigma+\Sigma A=\eta C$. Taking the trace of the exact
equation gives, with no approximation ({prf:ref}`thm-ch1-trace`),
$\frac12\Tr(A\Sigma)=\frac\eta4\big[\Tr C+\Tr(A\Sigma A)\big]$, so the thermal loss is
$\frac\eta4\Tr C$ up to a relative correction of order $\eta\lambda_{\max}$.

We use a rotated, anisotropic $A$ (eigenvalues $2\pm\sqrt2$) and noise whose principal
axes are *not* those of $A$, and three learning rates. **Tolerance**: the covariance is
measured from about $10^5$ effectively independent samples (standard error about 0.5 %),
so the discrete solution must match to 2 % in relative Frobenius norm at every $\eta$; the
continuous solution should match only at small $\eta$; the thermal loss must match
$\frac\eta4\Tr C$ to 5 % at $\eta=0.01$, where the correction is about 1 %.
""")

code(r"""
A = torch.tensor([[3.0, 1.0], [1.0, 1.0]], device=device)      # Hessian: eigenvalues 2 -+ sqrt(2)
C = torch.tensor([[1.0, -0.6], [-0.6, 0.5]], device=device)    # noise covariance, correlated
bowl = nt.quadratic(A)
lam_min = torch.linalg.eigvalsh(A).min().item()
n_replicas_2d = nt.by_scale(quick=4_000, full=40_000)
outer = {"outer": lambda s: s.theta[:, :, None] * s.theta[:, None, :]}   # theta theta^T per replica

results = {}
for lr2 in (0.01, 0.05, 0.2):
    n_burn2 = int(10 / (2 * lr2 * lam_min))                 # ten relaxation times of the slow mode
    n_meas2 = int(60 / (lr2 * lam_min))                     # ~60 correlation times per replica
    tr = nt.sgd(bowl, torch.zeros(n_replicas_2d, 2, device=device), lr2, n_burn2 + n_meas2,
                noise=nt.covariance_noise(C), generator=gen, observables=outer,
                every=max(1, n_meas2 // 500), record_from=n_burn2)
    sigma_hat = tr.time_average("outer").mean(0).double().cpu()
    sigma_discrete = nt.discrete_lyapunov(A.cpu(), C.cpu(), lr2)
    sigma_continuous = nt.continuous_lyapunov(A.cpu(), C.cpu(), lr2)
    results[lr2] = dict(
        measured=sigma_hat,
        err_discrete=(torch.linalg.norm(sigma_hat - sigma_discrete) / torch.linalg.norm(sigma_discrete)).item(),
        err_continuous=(torch.linalg.norm(sigma_hat - sigma_continuous) / torch.linalg.norm(sigma_continuous)).item(),
        thermal=0.5 * torch.trace(A.cpu().double() @ sigma_hat).item(),
        thermal_exact=lr2 / 4 * (torch.trace(C.cpu()).item() + torch.trace(A.cpu().double() @ sigma_hat @ A.cpu().double()).item()),
    )

print(f"{'lr':>6}  {'|S-S_disc|/|S_disc|':>20}  {'|S-S_cont|/|S_cont|':>20}  "
      f"{'thermal / (lr/4 Tr C)':>22}  {'thermal / exact identity':>25}")
for lr2, r in results.items():
    print(f"{lr2:6.2f}  {100 * r['err_discrete']:19.2f}%  {100 * r['err_continuous']:19.2f}%  "
          f"{r['thermal'] / (lr2 / 4 * torch.trace(C).item()):22.4f}  {r['thermal'] / r['thermal_exact']:25.4f}")

cov_worst = max(r["err_discrete"] for r in results.values())
thermal_pred = 0.01 / 4 * torch.trace(C).item()
thermal_check = nt.compare("thermal loss at lr = 0.01", thermal_pred, results[0.01]["thermal"])
assert cov_worst < 0.02, f"covariance differs from the discrete Lyapunov solution by {100 * cov_worst:.2f} %"
assert results[0.2]["err_continuous"] > 0.05, "at lr = 0.2 the continuous solution should be visibly off"
assert thermal_check.rel_error < 0.05
assert all(abs(r["thermal"] / r["thermal_exact"] - 1) < 0.02 for r in results.values())
""")

code(r"""
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharex=True, sharey=True)
angle = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
circle = torch.stack([angle.cos(), angle.sin()])
for ax, (lr2, r) in zip(axes, results.items()):
    for S, style, label in [(r["measured"], "-", "measured"),
                            (nt.discrete_lyapunov(A.cpu(), C.cpu(), lr2), "--", "discrete Lyapunov"),
                            (nt.continuous_lyapunov(A.cpu(), C.cpu(), lr2), ":", "continuous Lyapunov")]:
        ell = torch.linalg.cholesky(S / lr2) @ circle        # 1-sigma ellipse, scaled by 1/lr
        ax.plot(ell[0], ell[1], style, label=label)
    ax.set_title(f"$\\eta$ = {lr2}")
    ax.set_xlabel(r"$\theta_1/\sqrt{\eta}$")
    ax.set_aspect("equal")
axes[0].set_ylabel(r"$\theta_2/\sqrt{\eta}$")
axes[0].legend(fontsize=8, loc="lower left")
plt.show()
""", **figure(
    alt="Three panels, one per learning rate, each with three one-standard-deviation ellipses of the "
        "stationary distribution scaled by the square root of the learning rate. The measured and discrete "
        "Lyapunov ellipses coincide in every panel; the continuous one separates at the largest rate.",
    caption="Stationary covariance ellipses (scaled by $1/\\sqrt\\eta$). The discrete Lyapunov solution "
            "matches at every $\\eta$; the small-step solution only at small $\\eta$.",
    name="fig-ch1-lyapunov"))

code(r"""
nt.glue("e2_cov_worst", 100 * cov_worst)
nt.glue("e2_thermal_pred", thermal_pred)
nt.glue("e2_thermal_meas", results[0.01]["thermal"])
nt.glue("e2_thermal_ratio", thermal_check.ratio);
""", tags=("remove-cell",))

md(r"""
**Measured.** The empirical covariance matches the discrete Lyapunov solution to
{glue:text}`e2_cov_worst:.2f` % at every learning rate. At $\eta=0.01$ the thermal loss is
{glue:text}`e2_thermal_meas:.5f` against $\frac\eta4\Tr C=$ {glue:text}`e2_thermal_pred:.5f`
(ratio {glue:text}`e2_thermal_ratio:.4f`); at larger $\eta$ the $\Tr(A\Sigma A)$ correction
grows, exactly as the trace identity says.
""")

# ----------------------------------------------------------------------------- E10
md(r"""
## Fluctuation–dissipation relations in linear regression

Now the noise is not added by hand: it comes from sampling minibatches. Least squares on
$N=256$ fixed examples in $d=10$ dimensions, $L(\theta)=\frac1{2N}\|X\theta-y\|^2$, with
minibatches of $B=4$ examples drawn with replacement, $g_B=\frac1B\sum_{i\in\mathcal B}x_i(x_i^\top\theta-y_i)$.
The minibatch noise is multiplicative, anisotropic and non-Gaussian, yet at stationarity
two identities hold exactly, for any $\eta$ ({prf:ref}`thm-ch1-fdr`):

$$
\text{FDR1:}\quad \langle(\theta-c)\cdot\nabla L\rangle=\frac\eta2\langle\|g_B\|^2\rangle,
\qquad
\text{FDR2:}\quad \langle\|\nabla L\|^2\rangle=\frac\eta2\langle g_B^\top H g_B\rangle ,
$$

with $H=X^\top X/N$ and any constant $c$ (we take the least-squares solution $\theta^*$).
**Tolerance**: both sides are stationary averages estimated from independent replicas with a
relative standard error of about 0.1 %; we assert 3 %.
""")

code(r"""
n_data, dim, batch_size = 256, 10, 4
X = torch.randn(n_data, dim, generator=gen, device=device)
y = X @ torch.randn(dim, generator=gen, device=device) + 0.5 * torch.randn(n_data, generator=gen, device=device)
H = X.T @ X / n_data
theta_star = torch.linalg.solve(X.T @ X, X.T @ y)          # least-squares minimiser

def minibatch_gradient(theta, g):
    # Each replica draws its own B examples, with replacement: idx has shape (R, B).
    idx = torch.randint(n_data, (theta.shape[0], batch_size), generator=g, device=theta.device)
    residual = torch.einsum("rbd,rd->rb", X[idx], theta) - y[idx]
    return torch.einsum("rbd,rb->rd", X[idx], residual) / batch_size

def full_gradient(theta):
    return (theta - theta_star) @ H

lr3 = 0.05
fdr = {
    "fdr1_lhs": lambda s: ((s.theta - theta_star) * full_gradient(s.theta)).sum(-1),
    "fdr1_rhs": lambda s: lr3 / 2 * (s.gradient ** 2).sum(-1),
    "fdr2_lhs": lambda s: (full_gradient(s.theta) ** 2).sum(-1),
    "fdr2_rhs": lambda s: lr3 / 2 * ((s.gradient @ H) * s.gradient).sum(-1),
}
n_replicas_fdr = nt.by_scale(quick=2_000, full=20_000)
n_burn3 = int(10 / (2 * lr3 * torch.linalg.eigvalsh(H).min().item()))
traj_fdr = nt.sgd(minibatch_gradient, theta_star.expand(n_replicas_fdr, dim).clone(), lr3,
                  n_burn3 + 3_000, generator=gen, observables=fdr, every=5, record_from=n_burn3)

checks = {}
for k in ("fdr1", "fdr2"):
    lhs = nt.replica_estimate(traj_fdr.time_average(f"{k}_lhs"))
    rhs = nt.replica_estimate(traj_fdr.time_average(f"{k}_rhs"))
    checks[k] = nt.compare(k.upper() + " (lhs vs rhs)", rhs.mean, lhs.mean, lhs.sem)
    assert checks[k].rel_error < 0.03, f"{k} violated by {100 * checks[k].rel_error:.2f} %"
""")

code(r"""
fig, ax = plt.subplots()
steps = traj_fdr.steps
for k, color in (("fdr1", nt.PALETTE["blue"]), ("fdr2", nt.PALETTE["orange"])):
    lhs_t = traj_fdr[f"{k}_lhs"].mean(1).cpu()
    rhs_t = traj_fdr[f"{k}_rhs"].mean(1).cpu()
    ax.plot(steps, lhs_t, color=color, label=f"{k.upper()} left side")
    ax.plot(steps, rhs_t, color=color, ls="--", label=f"{k.upper()} right side")
ax.set_xlabel("step $t$")
ax.set_ylabel("replica average (loss$^2$ / parameter$^2$ units)")
ax.set_title(f"Linear regression, $B$={batch_size}, $\\eta$={lr3}")
ax.legend(fontsize=9)
plt.show()
""", **figure(
    alt="Replica averages of the left and right sides of FDR1 and FDR2 against the step number; "
        "for each relation the solid and dashed curves fluctuate around the same level.",
    caption="Both sides of each fluctuation-dissipation relation, averaged over replicas at each recorded step.",
    name="fig-ch1-fdr"))

code(r"""
nt.glue("e10_fdr1_ratio", checks["fdr1"].ratio)
nt.glue("e10_fdr2_ratio", checks["fdr2"].ratio);
""", tags=("remove-cell",))

md(r"""
**Measured.** The ratio of the two sides is {glue:text}`e10_fdr1_ratio:.3f` for FDR1 and
{glue:text}`e10_fdr2_ratio:.3f` for FDR2, although the noise here is neither additive nor
Gaussian nor isotropic: the relations only use stationarity and $\E[g_B\mid\theta]=\nabla L$.
""")

# ----------------------------------------------------------------------------- explorer
md(r"""
## Explorer: noise shape, learning rate and batch size

A two-dimensional valley with curvatures $h_1=1$ and $h_2=10$, and per-sample gradient noise
that is either isotropic, $C=\sigma^2 I$, or Hessian-shaped, $C=\sigma^2 H/\bar h$ (same
trace, $\bar h$ the mean curvature). The exact discrete-time prediction for direction $i$ is
$\Var\theta_i=\frac{\eta C_{ii}}{B\,h_i(2-\eta h_i)}$. Isotropic noise gives every direction
the same *energy* $\frac{h_i}{2}\Var\theta_i$; Hessian-shaped noise gives every direction the
same *variance*, so the sharp direction holds more energy. The two figures below are the
static version (they are what the website shows); run the notebook to move the controls.
""")

code(r"""
curv = torch.tensor([1.0, 10.0], device=device)
valley2 = nt.diagonal_quadratic(curv)

def stationary(lr, batch_size, noise_shape, n_replicas=4_000):
    '''Sample the stationary law; return samples (R, 2), measured and predicted variances (2,).'''
    if noise_shape == "isotropic":
        C = torch.eye(2, device=device)
    else:
        C = torch.diag(curv) / curv.mean()
    n_burn = int(8 / (2 * lr * curv.min().item()))
    final = nt.sgd(valley2, torch.zeros(n_replicas, 2, device=device), lr, n_burn,
                   noise=nt.covariance_noise(C, batch_size=batch_size), generator=gen).theta
    predicted = lr * torch.diagonal(C) / (batch_size * curv * (2 - lr * curv))
    return final.cpu(), final.var(0).cpu(), predicted.cpu()

def show_stationary(lr=0.05, batch_size=1, noise_shape="isotropic"):
    samples, var_measured, var_predicted = stationary(lr, batch_size, noise_shape)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, color in enumerate((nt.PALETTE["blue"], nt.PALETTE["vermillion"])):
        s = math.sqrt(var_predicted[i])
        ax1.hist(samples[:, i], bins=60, range=(-4 * s, 4 * s), density=True, alpha=0.5, color=color,
                 label=f"$\\theta_{i + 1}$ ($h$ = {curv[i].item():g}), measured")
        grid = torch.linspace(-4 * s, 4 * s, 200)
        ax1.plot(grid, torch.exp(-grid**2 / (2 * s**2)) / math.sqrt(2 * math.pi * s**2), color=color,
                 label=f"$\\theta_{i + 1}$, Gaussian with predicted variance")
    ax1.set_xlabel(r"parameter $\theta_i$")
    ax1.set_ylabel("probability density")
    ax1.legend(fontsize=8)
    x = torch.arange(2)
    ax2.bar(x - 0.2, 0.5 * curv.cpu() * var_measured, width=0.4, label="measured")
    ax2.bar(x + 0.2, 0.5 * curv.cpu() * var_predicted, width=0.4, label="predicted")
    ax2.set_xticks(x, [f"$h$ = {h:g}" for h in curv.tolist()])
    ax2.set_ylabel(r"energy $\frac{h_i}{2}\mathrm{Var}\,\theta_i$ (loss)")
    ax2.legend(fontsize=8)
    fig.suptitle(f"{noise_shape} noise, $\\eta$ = {lr:g}, $B$ = {batch_size}")
    plt.show()
    return var_measured, var_predicted
""")

STATIC_CHECK = r"""
var_measured, var_predicted = show_stationary(0.05, 1, "{shape}")
ratio = var_measured / var_predicted
print(f"{shape}: measured / predicted variance per direction = {{[round(r, 4) for r in ratio.tolist()]}}")
# 4000 samples: the relative standard error of a variance is sqrt(2/4000) = 2.2 %; allow 4.5 of them.
assert (ratio - 1).abs().max() < 0.1
"""

code(STATIC_CHECK.format(shape="isotropic"), **figure(
    alt="Histograms of the two coordinates under isotropic noise with Gaussian curves of the predicted variance, "
        "and bars of energy per direction: the two directions hold equal energy.",
    caption="Isotropic noise: the flat direction spreads more, and both directions hold the same energy.",
    name="fig-ch1-isotropic"))

code(STATIC_CHECK.format(shape="Hessian-shaped"), **figure(
    alt="Histograms of the two coordinates under Hessian-shaped noise with Gaussian curves of the predicted "
        "variance, and bars of energy per direction: equal variances, ten times more energy in the sharp direction.",
    caption="Hessian-shaped noise: both directions have the same variance, so the sharp one holds more energy.",
    name="fig-ch1-hessian-shaped"))

md(r"""
Move the controls (in Jupyter or Colab): how does the sharp direction's histogram change as
$\eta h_2$ approaches 2? Which noise shape makes the batch size matter more?
""")

code(r"""
def explore(lr, batch_size, noise_shape):
    show_stationary(lr, batch_size, noise_shape)

nt.explorer(explore,
            controls={"lr": (0.005, 0.19, 0.005), "batch_size": (1, 64), "noise_shape": ["isotropic", "Hessian-shaped"]},
            defaults={"lr": 0.05, "batch_size": 1, "noise_shape": "isotropic"})
""")

md(r"""
## What this lab showed

- Stationary SGD on quadratic valleys holds the thermal energy the exact discrete-time
  formula predicts, valley by valley; equipartition is its small-step limit.
- SignGD also equipartitions, at an energy linear in the noise scale.
- With correlated, anisotropic noise the discrete Lyapunov equation predicts the whole
  covariance at any stable learning rate; the thermal loss is $\frac\eta4\Tr C$ to first order.
- Yaida's fluctuation–dissipation relations hold for genuine minibatch noise.

Continue with the exercises at the end of {doc}`theory`.
""")

nb = nbf.v4.new_notebook()
nb.cells = cells
nb.metadata = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
out = ROOT / "chapters" / "01-sgd-thermal" / "lab.ipynb"
nbf.write(nb, out)
print("wrote", out)
