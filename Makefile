# `make run` and `make test` are all a newcomer needs; README.md explains every target.

# Build folder for every swift command; give each checkout or user its own when sharing a machine.
SCRATCH_PATH ?= .build
SWIFT_FLAGS := --scratch-path $(SCRATCH_PATH)
NODE := scripts/rabbitmq-node.sh

.PHONY: run test bench up down build clean wipe

# Starts the local node, then runs the AMQP demo against it in the foreground.
run: up
	swift run $(SWIFT_FLAGS) -c release AMQPDemo

test:
	scripts/test.sh $(SWIFT_FLAGS)

bench:
	SCRATCH_PATH=$(SCRATCH_PATH) bench/run.sh

up:
	scripts/install-deps.sh
	$(NODE) start

down:
	$(NODE) stop

build:
	swift build $(SWIFT_FLAGS)

# Stops the local node and deletes its data (var/rabbitmq).
wipe:
	$(NODE) wipe

clean:
	rm -rf $(SCRATCH_PATH) bench/build
