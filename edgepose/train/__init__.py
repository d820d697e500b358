"""Host-side training (needs edgepose[train]: TensorFlow/Keras, scikit-learn, matplotlib).

One module per noun: ``hyperparameters`` (knobs), ``model_spec`` (backbone
registry), ``weights`` (where backbone weights come from), ``training`` (fit
loop shared by all trainers), ``run_writer`` (the run directory),
``evaluation`` (metrics and plots), ``image_classifier`` (the image task).
Nothing on the device side imports this package.
"""

from edgepose.quiet import import_tensorflow

import_tensorflow()  # before anything else imports it, so its banner stays quiet
