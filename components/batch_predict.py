"""batch_predict: score a table (local or gs://) with a registered model -> one Parquet file."""

from htl.components.images import component


@component
def batch_predict(
    model_uri: str, input_uri: str, output_uri: str, tracking_uri: str, chunk_rows: int
) -> int:
    """Returns the number of rows scored."""
    import mlflow

    from htl.predict import predict_table

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return predict_table(model_uri, input_uri, output_uri, chunk_rows)
