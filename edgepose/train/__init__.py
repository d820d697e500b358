"""Host-side training (needs edgepose[train]: TensorFlow/Keras, scikit-learn, matplotlib).

One module per noun: ``hyperparameters`` (knobs), ``model_spec`` (backbone
registry), ``weights`` (where backbone weights come from), ``training`` (fit
loop shared by all trainers), ``run_writer`` (the run directory),
``evaluation`` (metrics and plots), ``image_classifier`` (the image task).
Nothing on the device side imports this package. Importing the package itself
loads no TensorFlow; the modules that use Keras get it from
:mod:`edgepose.keras_quiet`, which imports it quietly.
"""
