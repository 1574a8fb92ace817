# pg_lifecycle: PGXS build.  The version lives only in pg_lifecycle.control.

EXTENSION    = pg_lifecycle
EXTVERSION   = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

# One C file and one SQL file per feature.  The install script is the
# feature SQL files concatenated in this order (later features may use
# objects of earlier ones).
FEATURES     = pg_lifecycle actor updated_at soft_delete audit counters

MODULE_big   = pg_lifecycle
OBJS         = $(patsubst %,src/%.o,$(FEATURES))
PG_CFLAGS    = -Wall -Werror

DATA_built   = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--0.1.0--0.2.0.sql
EXTRA_CLEAN  = $(DATA_built)
# Released install scripts, frozen as shipped: ALTER EXTENSION ... UPDATE
# starts from them (and test/integration/upgrade.sh installs them).
DATA         = upgrade/$(EXTENSION)--0.1.0.sql

REGRESS      = pg_lifecycle actor updated_at soft_delete audit counters
REGRESS_OPTS = --inputdir=. --outputdir=.
ISOLATION    = updated_at_concurrent soft_delete_concurrent counters_concurrent counters_limit counters_errors
ISOLATION_OPTS = --inputdir=test

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(patsubst %,src/%.sql,$(FEATURES)) $(EXTENSION).control
	cat $(patsubst %,src/%.sql,$(FEATURES)) > $@

# 0.1.0 -> 0.2.0 adds usage counters: src/counters.sql as it is in 0.2.0.
$(EXTENSION)--0.1.0--0.2.0.sql: src/counters.sql
	sed 's/^\\echo Use "CREATE EXTENSION.*/\\echo Use "ALTER EXTENSION pg_lifecycle UPDATE TO '"'"'0.2.0'"'"'" to load this file. \\quit/' $< > $@

.PHONY: demo demo-stop bench test
demo:
	bash test/demo.sh

demo-stop:
	bash test/demo.sh stop

bench:
	bash bench/run.sh

test:
	bash .ci/run

# Every feature includes the shared header.
$(OBJS): src/pg_lifecycle.h
