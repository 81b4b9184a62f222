"""Market feeds for the service (DESIGN §8 ``--feed``): the source grammar (:mod:`.spec`) and
the replay of the real files (:mod:`.replay`)."""
