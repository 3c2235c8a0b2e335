# independent reference: scipy BFGS on the same penalised soft-label objective
import numpy as np
from scipy.optimize import minimize
y = np.array([1, 1, 0.5, 0, 1, 0.5, 1, 0, 1, 1], float)
lc = np.array([120, 80, 60, 30, 200, 90, 150, 20, 110, 95], float)
lb = np.array([100, 100, 70, 60, 100, 60, 100, 50, 100, 90], float)
d = lc - lb
x = np.tanh(d / d.std(ddof=1))
C = 100.0
def obj(w):
    eta = w[0] + w[1] * x
    ll = y * -np.logaddexp(0, -eta) + (1 - y) * -np.logaddexp(0, eta)
    return 0.5 * (w @ w) - C * ll.sum()
r = minimize(obj, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
print(repr(r.x), 1 / (1 + np.exp(-r.x[0])))
print("wr", y.mean(), "se", y.std(ddof=1) / np.sqrt(len(y)))
print("x", repr(x))
# all won, equal lengths
y2 = np.ones(4); x2 = np.zeros(4)
def obj2(w):
    eta = w[0] + w[1] * x2
    return 0.5 * (w @ w) - C * (-np.logaddexp(0, -eta)).sum()
r2 = minimize(obj2, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
print(repr(r2.x), 1 / (1 + np.exp(-r2.x[0])))
