# pg_lifecycle: PGXS build.  The version lives only in pg_lifecycle.control.

EXTENSION    = pg_lifecycle
EXTVERSION   = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

# The shared core (src/pg_lifecycle.h, compat.h) and one feature per file
# or small file group with a prefix and a header.  The install script is
# the feature SQL files concatenated in this order (later features may use
# objects of earlier ones).
FEATURES     = pg_lifecycle actor updated_at soft_delete audit counters retention redact
CORE         = module cache run_as ddl
FEATURE_C    = actor updated_at \
               soft_delete_graph soft_delete_cascade soft_delete_api soft_delete_triggers soft_delete_admin \
               audit audit_admin \
               counters_config counters_store counters_trigger counters_guard counters_api counters_admin \
               retention_admin retention_run retention_archive \
               redact_detect redact_rules redact

MODULE_big   = pg_lifecycle
OBJS         = $(patsubst %,src/%.o,$(CORE) $(FEATURE_C))
PG_CFLAGS    = -Wall -Werror

DATA_built   = $(EXTENSION)--$(EXTVERSION).sql
EXTRA_CLEAN  = $(DATA_built)
# Released scripts, frozen as shipped: the install scripts of earlier
# versions (ALTER EXTENSION ... UPDATE starts from them) and the update
# scripts between versions.  A change of the SQL after a release goes into
# a new update script; test/integration/upgrade.sh checks that updating
# gives exactly a fresh install.
DATA         = upgrade/$(EXTENSION)--0.1.0.sql upgrade/$(EXTENSION)--0.1.0--0.2.0.sql \
               upgrade/$(EXTENSION)--0.2.0.sql upgrade/$(EXTENSION)--0.2.0--0.3.0.sql \
               upgrade/$(EXTENSION)--0.3.0.sql upgrade/$(EXTENSION)--0.3.0--0.4.0.sql \
               upgrade/$(EXTENSION)--0.4.0.sql upgrade/$(EXTENSION)--0.4.0--0.5.0.sql

REGRESS      = pg_lifecycle actor updated_at soft_delete audit counters retention redact security fuzz
REGRESS_OPTS = --inputdir=. --outputdir=.
ISOLATION    = updated_at_concurrent soft_delete_concurrent soft_delete_restore_concurrent \
               counters_concurrent counters_limit counters_errors retention_concurrent \
               redact_rules_concurrent
ISOLATION_OPTS = --inputdir=test

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(patsubst %,src/%.sql,$(FEATURES)) $(EXTENSION).control
	cat $(patsubst %,src/%.sql,$(FEATURES)) > $@

.PHONY: demo demo-stop bench test
demo:
	bash test/demo.sh

demo-stop:
	bash test/demo.sh stop

bench:
	bash bench/run.sh

test:
	bash .ci/run

# Every file includes the shared headers; a feature's files, its own.
$(OBJS): src/pg_lifecycle.h src/compat.h
$(patsubst %,src/%.o,$(filter soft_delete%,$(FEATURE_C))): src/soft_delete.h
$(patsubst %,src/%.o,$(filter audit%,$(FEATURE_C))): src/audit.h
$(patsubst %,src/%.o,$(filter counters%,$(FEATURE_C))): src/counters.h
$(patsubst %,src/%.o,$(filter retention%,$(FEATURE_C))): src/retention.h
