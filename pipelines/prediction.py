"""The batch-scoring pipeline, `htl-prediction`: one task that scores a table with a registered
model (by default the champion) and writes the predictions beside it, e.g. on gs://."""

from kfp import dsl

from htl.components.batch_predict import batch_predict

PIPELINE_NAME = "htl-prediction"


@dsl.pipeline(name=PIPELINE_NAME, description="Score a table with a registered htl model.")
def prediction_pipeline(
    input_uri: str,
    output_uri: str,
    tracking_uri: str,
    model_uri: str = "models:/htl@champion",
    chunk_rows: int = 100_000,
) -> None:
    batch_predict(
        model_uri=model_uri,
        input_uri=input_uri,
        output_uri=output_uri,
        tracking_uri=tracking_uri,
        chunk_rows=chunk_rows,
    ).set_display_name("predict").set_caching_options(False)  # it writes outside the pipeline
