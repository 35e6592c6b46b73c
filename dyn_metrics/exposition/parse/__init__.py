"""The strict parser, back from either format to the plain model.

``reader`` drives one pass over an input: ``text_lines`` and ``om_lines`` lex
one line of each format from the pieces in ``tokens`` (label sets, escapes)
and ``numbers`` (values, timestamps, ``le``/``quantile``); ``families`` files
the lines into families; ``family_rules`` checks each family as a whole;
``lint`` finds the discouraged names of a built family for the checker.
"""
