SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('POST') AND lower(CAST("Url" AS VARCHAR)) LIKE lower('%/mgmt/tm/util/bash') ESCAPE '\', false);
