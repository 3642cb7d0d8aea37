/* What the output formats of every kernel share; each kernel's own names are in
 * kernels/<name>/format.h. */
#ifndef HB_COMMON_FORMAT_H
#define HB_COMMON_FORMAT_H

/* Integer attribute of a kernel's output group: the version of the layout of that group,
 * raised when a reader of the old layout would misread the new one. Readers refuse a
 * version they do not know; a group without it was written before versions were kept. */
#define HB_FORMAT_VERSION_ATTR "format_version"

#endif
