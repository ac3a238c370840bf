SELECT *
FROM websession
WHERE coalesce(lower(CAST("Url" AS VARCHAR)) LIKE lower('%/pwndrop/%') ESCAPE '\', false);
