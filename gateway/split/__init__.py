"""The split shape: gateway processes in front of engine shards, talking over Redis Streams.

`backlay serve` runs everything in one process. `backlay serve --gateways N --shards M` runs M
engine processes (each a shard: its own sequencer, journal stream, snapshots, persister and
Postgres schema, owning the markets whose id hashes to it) and N gateway processes (WebSocket
and HTTP: auth, validation, rate limits, subscriptions, conflation), started and restarted by a
supervisor. docs/scale-out.md is the design; the modules:

  wire.py        streams, records and their framing; the ordered, batched writer and reader
  shards.py      which shard owns a market, an order, a withdrawal, a user's home wallet
  calls.py       the engine reads and views a gateway may ask for by name (HTTP, subscribe)
  intake.py      engine side: commands and requests in, replies and pushes out, per gateway
  publisher.py   engine side: the Hub with market data published to the gateways
  engine_node.py engine process: recovery, sequencer, persister, intake, publisher
  client.py      gateway side: requests out to shards, replies and pushes in, call results
  mirror.py      gateway side: every market's latest state, from the shards' market data
  gateway_ops.py gateway side: which op is answered here, which goes to which shard(s)
  scatter.py     gateway side: requests every shard answers, pushes summed over shards
  history.py     statements and cleared orders merged from every shard's read model
  reports.py     the operator's GGR report merged from every shard's read model
  remote.py      gateway side: the Exchange the HTTP edge talks to, as named calls
  gateway_node.py gateway process: the trading WebSocket and HTTP over all of the above
  supervisor.py  `serve --gateways N`: storage, engine and gateway processes, restarts

Invariants kept here: nobody hears of a command before its shard journaled it (replies and
pushes leave an engine only from the sequencer's release); a connection's frames from one shard
arrive in the order that shard produced them (one stream per gateway, one writer per shard,
batches written in order), so a reply still precedes every later push about its orders.
"""
