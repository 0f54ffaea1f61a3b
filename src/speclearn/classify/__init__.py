"""Classification of spectra (material identification): a 1-D CNN with transfer learning against
kNN, SVM, random forest and PLS-DA, all behind one base class and one model format."""
from speclearn.classify.base import SpectralClassifier, check_labels, read_labels
from speclearn.classify.cnn import CNNClassifier
from speclearn.classify.forest import ForestClassifier
from speclearn.classify.knn import KNNClassifier
from speclearn.classify.plsda import PLSDAClassifier
from speclearn.classify.svm import SVMClassifier

__all__ = ["CNNClassifier", "ForestClassifier", "KNNClassifier", "PLSDAClassifier", "SVMClassifier",
           "SpectralClassifier", "check_labels", "read_labels"]
