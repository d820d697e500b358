"""Host-side training (needs edgepose[train]: TensorFlow/Keras, scikit-learn, matplotlib).

One module per noun: ``hyperparameters`` (knobs), ``model_spec`` (backbone
registry), ``weights`` (where backbone weights come from), ``training`` (fit
loop shared by all trainers), ``trainer_steps`` (what every trainer does around
the fit: write, fit, save, evaluate), ``rundir_writer`` (writes the run directory
whose layout :class:`edgepose.rundir.RunDir` owns), ``evaluation`` (metrics and
plots), ``chance`` and ``batchnorm`` (checks on a trained model),
``image_classifier`` / ``keypoint_classifier`` + ``keypoint_layers`` (the tasks).
Nothing on the device side imports this package. Importing the package itself
loads no TensorFlow; the modules that use Keras get it from
:mod:`edgepose.keras_quiet`, which imports it quietly.
"""
