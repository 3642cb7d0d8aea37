/* The names of the index kernel's output (docs/index.md, DESIGN.md 4.3), shared by the
 * kernel that writes it and `h5batch query` that reads it: the group, its datasets, the
 * attributes a reader needs and the format version. */
#ifndef HB_INDEX_FORMAT_H
#define HB_INDEX_FORMAT_H

#include "kernels/common/format.h"

/* 1: the CSR arrays below; an index without the attribute has the same layout */
#define HB_INDEX_FORMAT_VERSION 1

#define HB_INDEX_GROUP "/index"
/* the term dictionary, sorted by bytes: term i is terms[term_offsets[i] : term_offsets[i+1]] */
#define HB_INDEX_TERMS HB_INDEX_GROUP "/terms"
#define HB_INDEX_TERM_OFFSETS HB_INDEX_GROUP "/term_offsets"
#define HB_INDEX_DF HB_INDEX_GROUP "/df"
#define HB_INDEX_CF HB_INDEX_GROUP "/cf"
/* postings of term i: [postings_offsets[i], postings_offsets[i+1]) */
#define HB_INDEX_POSTINGS_OFFSETS HB_INDEX_GROUP "/postings_offsets"
#define HB_INDEX_POSTINGS_DOC HB_INDEX_GROUP "/postings_doc"
#define HB_INDEX_POSTINGS_TF HB_INDEX_GROUP "/postings_tf"
/* positions of posting j: positions[positions_offsets[j] : positions_offsets[j+1]] */
#define HB_INDEX_POSITIONS_OFFSETS HB_INDEX_GROUP "/positions_offsets"
#define HB_INDEX_POSITIONS HB_INDEX_GROUP "/positions"
/* per document, and the stop words the index was made with */
#define HB_INDEX_DOC_LENGTH HB_INDEX_GROUP "/doc_length"
#define HB_INDEX_DOC_ID HB_INDEX_GROUP "/doc_id"
#define HB_INDEX_STOPWORDS HB_INDEX_GROUP "/stopwords"

/* the documents' names (string doc ids, titles) on the doc dimension, and where the
 * corpus is: its file, its text and offsets (empty: text as one string per document) */
#define HB_INDEX_DOCS_GROUP "/docs"
#define HB_INDEX_DOCS_DOC HB_INDEX_DOCS_GROUP "/doc"
#define HB_INDEX_DOCS_DOC_ID HB_INDEX_DOCS_GROUP "/doc_id"
#define HB_INDEX_DOCS_TITLE HB_INDEX_DOCS_GROUP "/title"
#define HB_INDEX_ATTR_CORPUS_FILE "corpus_file"
#define HB_INDEX_ATTR_CORPUS_TEXT "corpus_text"
#define HB_INDEX_ATTR_CORPUS_OFFSETS "corpus_offsets"
/* a merge of several corpus files (h5batch merge): each file and its first document */
#define HB_INDEX_CORPORA_GROUP HB_INDEX_DOCS_GROUP "/corpora"
#define HB_INDEX_CORPORA_FILE HB_INDEX_CORPORA_GROUP "/file"
#define HB_INDEX_CORPORA_FIRST_DOC HB_INDEX_CORPORA_GROUP "/first_doc"
#define HB_INDEX_ATTR_TITLE_FROM "title_from" /* title: the corpus's titles; doc_id: its string ids */

/* attributes of the group that a reader needs: sizes and the tokenizer settings */
#define HB_INDEX_ATTR_N_DOCS "n_docs"
#define HB_INDEX_ATTR_N_TERMS "n_terms"
#define HB_INDEX_ATTR_TOTAL_TOKENS "total_tokens"
#define HB_INDEX_ATTR_STEMMER "stemmer"
#define HB_INDEX_ATTR_MAX_TOKEN_BYTES "max_token_bytes"
#define HB_INDEX_ATTR_POSITIONS "positions"

#endif
