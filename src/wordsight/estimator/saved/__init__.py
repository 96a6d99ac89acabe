"""A Classifier's saved form: what its config.json holds (``persistence``), the checks of its
fields and arrays (``checks``), fine-tuned encoder weights kept in the folder
(``finetuned_weights``) and folders of earlier versions (``legacy_config``). How every folder is
written and verified (checksums, confinement, atomic swap) is :mod:`wordsight.storage`."""
