/* The names of the traffic kernel's output (DESIGN.md 4.1): the group,
 * its datasets and its format version. */
#ifndef HB_TRAFFIC_FORMAT_H
#define HB_TRAFFIC_FORMAT_H

#include "kernels/common/format.h"

#define HB_TRAFFIC_FORMAT_VERSION 1

#define HB_TRAFFIC_GROUP "/traffic"
/* dimension scales */
#define HB_TRAFFIC_SEGMENT HB_TRAFFIC_GROUP "/segment"
#define HB_TRAFFIC_DAY_OF_WEEK HB_TRAFFIC_GROUP "/day_of_week"
#define HB_TRAFFIC_HOUR HB_TRAFFIC_GROUP "/hour"
/* [S, 7, 24] */
#define HB_TRAFFIC_COUNT HB_TRAFFIC_GROUP "/count"
#define HB_TRAFFIC_MEAN_SPEED HB_TRAFFIC_GROUP "/mean_speed"
#define HB_TRAFFIC_TRAVEL_TIME_INDEX HB_TRAFFIC_GROUP "/travel_time_index"
#define HB_TRAFFIC_SPEED_PCT_FMT HB_TRAFFIC_GROUP "/speed_p%g" /* of the percentile */
/* [S] */
#define HB_TRAFFIC_FREE_FLOW_SPEED HB_TRAFFIC_GROUP "/free_flow_speed"
#define HB_TRAFFIC_SEGMENT_COUNT HB_TRAFFIC_GROUP "/segment_count"
/* event days, [S, 24] */
#define HB_TRAFFIC_EVENTS HB_TRAFFIC_GROUP "/events"
#define HB_TRAFFIC_EVENTS_COUNT HB_TRAFFIC_EVENTS "/count"
#define HB_TRAFFIC_EVENTS_MEAN_SPEED HB_TRAFFIC_EVENTS "/mean_speed"
#define HB_TRAFFIC_EVENTS_SPEED_PCT_FMT HB_TRAFFIC_EVENTS "/speed_p%g"

#endif
