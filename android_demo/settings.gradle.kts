// SL-FMDet Android demo: `app` (CameraX + LiteRT/ExecuTorch, Android) on top of `postprocess`
// (pure Kotlin/JVM: letterbox, anchors, decode, NMS, int8 (de)quantization; tested against tests/golden).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "slfm-android-demo"
include(":app", ":postprocess")
