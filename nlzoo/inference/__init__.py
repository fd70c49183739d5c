"""Inference helpers shared by the command line (:mod:`nlzoo.cli`) and the web page (:mod:`nlzoo.app`).

Loading a model to run, turning a file into its input (:mod:`.inputs`), view-averaged class scores of a
video or an image (:mod:`.scores`) and their names as people read them (:mod:`.labels`), pose keypoints and
their drawing (:mod:`.pose`) and attention pictures (:mod:`.attention`).
They sit below both front ends so the page runs exactly what the commands run.
"""
