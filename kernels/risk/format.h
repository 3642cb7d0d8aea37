/* The names of the risk kernel's output (docs/risk.md, DESIGN.md 4.2): the group, its
 * datasets and its format version. */
#ifndef HB_RISK_FORMAT_H
#define HB_RISK_FORMAT_H

#include "kernels/common/format.h"

#define HB_RISK_FORMAT_VERSION 1

#define HB_RISK_GROUP "/risk"
/* dimension scales */
#define HB_RISK_PORTFOLIO HB_RISK_GROUP "/portfolio"
#define HB_RISK_ASSET HB_RISK_GROUP "/asset"
#define HB_RISK_CONFIDENCE HB_RISK_GROUP "/confidence"
#define HB_RISK_ES_CONFIDENCE HB_RISK_GROUP "/es_confidence"
#define HB_RISK_DATE HB_RISK_GROUP "/date"
/* [P, VaR levels] and [P, ES levels], per method */
#define HB_RISK_VAR_HISTORICAL HB_RISK_GROUP "/var_historical"
#define HB_RISK_ES_HISTORICAL HB_RISK_GROUP "/es_historical"
#define HB_RISK_VAR_PARAMETRIC HB_RISK_GROUP "/var_parametric"
#define HB_RISK_ES_PARAMETRIC HB_RISK_GROUP "/es_parametric"
#define HB_RISK_VAR_MONTECARLO HB_RISK_GROUP "/var_montecarlo"
#define HB_RISK_ES_MONTECARLO HB_RISK_GROUP "/es_montecarlo"
/* [P] */
#define HB_RISK_MEAN_PNL HB_RISK_GROUP "/mean_pnl"
#define HB_RISK_VOLATILITY HB_RISK_GROUP "/volatility"
#define HB_RISK_BACKTEST_EXCEPTIONS HB_RISK_GROUP "/backtest_exceptions"
#define HB_RISK_KUPIEC_LR HB_RISK_GROUP "/kupiec_lr"
#define HB_RISK_KUPIEC_PVALUE HB_RISK_GROUP "/kupiec_pvalue"
#define HB_RISK_CHRISTOFFERSEN_LR HB_RISK_GROUP "/christoffersen_lr"
#define HB_RISK_CHRISTOFFERSEN_PVALUE HB_RISK_GROUP "/christoffersen_pvalue"
#define HB_RISK_TRAFFIC_LIGHT HB_RISK_GROUP "/traffic_light"
/* [P, A] and [P, window] */
#define HB_RISK_EXPOSURE HB_RISK_GROUP "/exposure"
#define HB_RISK_PNL HB_RISK_GROUP "/pnl"

#endif
