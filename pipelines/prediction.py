"""The batch-scoring pipeline, `htl-prediction`: one task that scores a table with a registered
model (by default the champion) and writes the predictions beside it, e.g. on gs://."""

from kfp import dsl

from htl.components.batch_predict import batch_predict
from htl.components.images import Images

PIPELINE_NAME = "htl-prediction"


def make_prediction_pipeline(images: Images | None):
    """The pipeline with its task in `images.cpu` (None: the component's own image)."""

    @dsl.pipeline(name=PIPELINE_NAME, description="Score a table with a registered htl model.")
    def prediction_pipeline(
        input_uri: str,
        output_uri: str,
        tracking_uri: str,
        model_uri: str = "models:/htl@champion",
        chunk_rows: int = 100_000,
    ) -> None:
        task = batch_predict(
            model_uri=model_uri,
            input_uri=input_uri,
            output_uri=output_uri,
            tracking_uri=tracking_uri,
            chunk_rows=chunk_rows,
        ).set_display_name("predict")
        task.set_caching_options(False)  # it writes outside the pipeline
        if images is not None:
            task.set_container_image(images.cpu).set_env_variable("HTL_IMAGE", images.cpu)

    return prediction_pipeline


prediction_pipeline = make_prediction_pipeline(Images.from_env())
