#!/usr/bin/python3
"""Small market files for the risk kernel's tests, each with a known property.

  planted   14 assets x 751 prices (750 return-days: a 500-day window and a 250-day
            backtest). Portfolio x < 13 holds only asset x, whose backtest days carry
            exactly x planted losses, each larger than every loss before it, while the
            other backtest losses stay below every VaR (every window holds at least 12
            losses of 3% from the pre-backtest days, and k = 5 at 99%). So portfolio x
            has exactly x exceptions; asset 7's are consecutive, asset 10's in pairs.
            Portfolio 13 holds every asset, 14 is short asset 13 (plain noise).
  returns   the planted case as /market/returns (750 rows) instead of prices.
  tx        6 assets x 600 days with a /transactions table (fractional quantities,
            trades after the as_of the tests use, portfolio 4 without trades,
            attribute n_portfolios = 5).
  nonpd     40 assets, 61 prices: a 40-day window has a singular covariance.
  duplicate 8 assets whose asset 7 repeats asset 3: a singular covariance.
  bad_*     one defect each: dates (not ascending), price_nan, price_neg,
            shape_prices, shape_exposure, tx_portfolio, tx_asset, no_positions.
"""
import argparse

import h5py
import numpy as np

PLANTED = 13  # portfolios 0..12 with 0..12 planted exceptions
WINDOW, BACKTEST = 500, 250


def weekdays(n, start=np.datetime64("2021-01-04")):
    days = np.arange(start, start + np.timedelta64(2 * n, "D"))
    days = days[np.is_busday(days)][:n]
    return np.array([int(str(d).replace("-", "")) for d in days], dtype=np.int32)


def planted_returns(rng):
    """Return-days x assets: pre-backtest noise with a 3% loss every 20 days, quiet
    backtest days, and the planted losses."""
    n = WINDOW + BACKTEST
    r = np.empty((n, PLANTED + 1))
    r[:WINDOW, :] = rng.uniform(-0.01, 0.01, (WINDOW, PLANTED + 1))
    r[np.arange(0, WINDOW, 20), :] = -0.03
    r[WINDOW:, :] = rng.uniform(-0.005, 0.01, (BACKTEST, PLANTED + 1))
    r[:, PLANTED] = rng.normal(0.0003, 0.012, n)  # an ordinary asset
    for x in range(1, PLANTED):
        if x == 7:
            days = WINDOW + 100 + np.arange(x)  # one cluster
        elif x == 10:
            days = WINDOW + 10 + 24 * np.arange(5)[:, None] + np.arange(2)  # pairs
            days = days.ravel()
        else:
            days = WINDOW + ((np.arange(x) + 0.5) * BACKTEST / x).astype(int)
        r[days, x] = -(0.05 + 0.01 * np.arange(x))
    return r


def planted_exposure():
    e = np.zeros((PLANTED + 2, PLANTED + 1))
    e[np.arange(PLANTED), np.arange(PLANTED)] = 1e6
    e[PLANTED, :] = 1e5
    e[PLANTED + 1, PLANTED] = -2e6
    return e


def write_market(f, dates, prices=None, returns=None):
    f["market/dates"] = dates
    if prices is not None:
        f["market/prices"] = prices
    if returns is not None:
        f["market/returns"] = returns


def prices_from(r, rng):
    p0 = rng.uniform(20, 200, r.shape[1])
    return np.vstack([p0, p0 * np.cumprod(1 + r, axis=0)])


def case_planted(f, rng, as_returns=False):
    r = planted_returns(rng)
    if as_returns:
        write_market(f, weekdays(len(r)), returns=r)
    else:
        write_market(f, weekdays(len(r) + 1), prices=prices_from(r, rng))
    f["portfolios/exposure"] = planted_exposure()


def random_prices(rng, days, assets):
    r = rng.standard_t(5, (days - 1, assets)) * 0.01 * np.sqrt(3 / 5) + 0.0002
    common = rng.standard_t(5, (days - 1, 1)) * 0.008
    return prices_from(r + common, rng)


def case_tx(f, rng):
    days, assets, m = 600, 6, 300
    dates = weekdays(days)
    write_market(f, dates, prices=random_prices(rng, days, assets))
    g = f.create_group("transactions")
    rows = np.sort(rng.integers(0, days, m))
    g["date"] = dates[rows]
    g["portfolio"] = rng.integers(0, 4, m).astype(np.int32)  # portfolio 4 never trades
    g["asset"] = rng.integers(0, assets, m).astype(np.int64)
    g["quantity"] = np.round(rng.normal(5, 20, m), 1) + 0.25
    g.attrs["n_portfolios"] = 5


def case_nonpd(f, rng):
    days, assets = 61, 40
    write_market(f, weekdays(days), prices=random_prices(rng, days, assets))
    f["portfolios/exposure"] = rng.uniform(-1e5, 1e6, (5, assets))


def case_duplicate(f, rng):
    days, assets = 301, 8
    p = random_prices(rng, days, assets)
    p[:, 7] = p[:, 3]
    write_market(f, weekdays(days), prices=p)
    e = rng.uniform(1e5, 1e6, (4, assets))
    e[0, :] = 0
    e[0, 7] = 1e6  # all of it in the duplicate
    f["portfolios/exposure"] = e


def case_bad(f, rng, what):
    if what.startswith("tx_"):
        case_tx(f, rng)
        g = f["transactions"]
        col = "portfolio" if what == "tx_portfolio" else "asset"
        v = g[col][...]
        v[17] = 9 if col == "portfolio" else 6
        del g[col]
        g[col] = v
        return
    r = planted_returns(rng)
    dates = weekdays(len(r) + 1)
    prices = prices_from(r, rng)
    if what == "dates":
        dates[5] = dates[4]
    elif what == "price_nan":
        prices[600, 3] = np.nan
    elif what == "price_neg":
        prices[10, 2] = -5.0
    elif what == "shape_prices":
        prices = prices[:-1]
    write_market(f, dates, prices=prices)
    e = planted_exposure()
    if what == "shape_exposure":
        e = e[:, :-1]
    if what != "no_positions":
        f["portfolios/exposure"] = e


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--case", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    with h5py.File(a.output, "w") as f:
        if a.case == "planted":
            case_planted(f, rng)
        elif a.case == "returns":
            case_planted(f, rng, as_returns=True)
        elif a.case == "tx":
            case_tx(f, rng)
        elif a.case == "nonpd":
            case_nonpd(f, rng)
        elif a.case == "duplicate":
            case_duplicate(f, rng)
        elif a.case.startswith("bad_"):
            case_bad(f, rng, a.case[4:])
        else:
            raise SystemExit(f"unknown case {a.case}")


if __name__ == "__main__":
    main()
