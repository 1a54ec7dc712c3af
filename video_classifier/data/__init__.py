"""Videos to clips: where bytes live (`storage`), decoding (`decoding`) and clip sampling and transforms
(`preprocessing`); the prepared-folder format (`manifest`), one clip decoded and its failure log (`clips`),
the streaming base (`streaming`); the sources (`user_videos`, `synthetic`, `hf_source`, `shards`), the
manifest as arrays (`records`), and on top `prepare` (a prepared folder) and `datasets` (map-style and
streamed training and evaluation datasets)."""
