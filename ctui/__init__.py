"""ctui: a Continuous Training workbench for the terminal.

`from ctui import track` gives the tiny metrics client a job uses to log params,
metrics and artifacts into its run folder.
"""

__version__ = "0.1.0"
