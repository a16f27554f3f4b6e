/* default_spec: the default experiment embedded in the binary (`ctxlab run` with no argument).
 * It is experiments/papaya.ini byte for byte (tests/unit/test_lab_spec.c checks). */
#ifndef CTXLAB_LAB_DEFAULT_SPEC_H
#define CTXLAB_LAB_DEFAULT_SPEC_H

extern const char default_spec_text[];
#define DEFAULT_SPEC_FILE "experiments/papaya.ini"

#endif
