"""The timeline's defaults (serve/timeline.py), in a module of their own so that infer.py can show them in
its help without importing torch."""

# nats a change of label costs: two windows at 0.95 against 0.05 (2 x 2.94) pay for a short scene's two
# changes (2 x 2.5); one window, even at 0.99 against 0.01 (4.6), or a few at 0.6 against 0.4, do not
SWITCH_COST = 2.5
# the shortest segment kept by default, in windows (clip lengths): a cut between two shots of one scene
# (another camera, another place, the same action) puts the shot change inside the windows that straddle
# it, about one window's worth, and those may read as another class; a scene shorter than this is a
# label the windows cannot resolve anyway (bench/timeline.py measures it on scenes made of several shots)
MIN_SEGMENT_WINDOWS = 2.0
