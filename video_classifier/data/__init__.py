"""Videos to clips: where bytes live (`storage`), decoding (`decoding`) and clip sampling and transforms
(`preprocessing`); the prepared-folder format (`manifest`), one clip decoded and its failure log (`clips`),
the streaming base (`streaming`); the machinery of the sources (`user_videos`, `synthetic`, `hf_source`,
`shards`) and the manifest as arrays (`records`); the sources behind one door (`sources`: one module per
`data.source`, one table); and on top `prepare` (a prepared folder) and `datasets` (map-style and streamed
training and evaluation datasets)."""
