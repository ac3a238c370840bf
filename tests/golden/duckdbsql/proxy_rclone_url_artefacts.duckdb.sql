SELECT *
FROM websession
WHERE coalesce((lower(CAST("Url" AS VARCHAR)) LIKE lower('%/rclone-chunked-upload-%') ESCAPE '\' OR lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('PUT') AND lower(CAST("UrlPath" AS VARCHAR)) LIKE lower('%/uploadfile') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%nopartial=1%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%mtime=%') ESCAPE '\') AND NOT coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%rclone%') ESCAPE '\', false), false);
